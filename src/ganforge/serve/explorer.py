"""The explorer's model side: one generator in memory, shared by every request, turned into PNGs,
latents and projections. No web code here (that is :mod:`ganforge.serve.app`).

It only reads the run: the checkpoint is loaded once (and again on :meth:`Explorer.reload`),
never locked, so a run that is still training keeps writing (its checkpoints are replaced by
atomic renames, so a read sees a whole file).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from PIL import Image

from ..data import real_points
from ..editing import MIX_GROUPS, Editor, EditState, latent_from_array
from ..errors import CheckpointError, GanforgeError
from ..generator import (discriminator_from_state, generator_from_state, load_exported,
                         truncated_noise)
from ..inversion import project
from ..io import load_checkpoint
from ..io.checkpoint import resolve_checkpoint
from ..project import read_target
from ..report.plots import make_grid, to_uint8

MAX_LATENTS = 256  # uploaded and projected latents kept in memory (least recently used dropped)
MAX_SEED = 2 ** 31 - 1
GRID = 16
POINTS = 512  # points drawn per seed for the 2-D toy
PLOT = 320  # side of the toy's plot in pixels


class BadRequest(GanforgeError):
    """A request the explorer refuses (HTTP 400); the message says what to send instead."""


def _png(u8: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).save(buf, format="PNG",
                                                                    compress_level=1)
    return buf.getvalue()


def _number(params: Mapping[str, str], key: str, kind=float, default=None, lo=None, hi=None):
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise BadRequest(f"{key}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if kind is float and not np.isfinite(value):
        raise BadRequest(f"{key} must be finite, got {raw!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadRequest(f"{key} must be from {lo} to {hi}, got {raw}")
    return value


class Explorer:
    """A run (or export) loaded for exploring: ``k`` SeFa directions, latents by id, projection
    jobs. ``lock`` makes the generator do one forward at a time."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", k: int = 8,
                 project_steps: int = 200) -> None:
        self.path = Path(path)
        self.device, self.k, self.project_steps = device, k, project_steps
        self.lock = threading.Lock()
        self.latents: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.jobs: dict[str, dict] = {}
        self.load()

    # ------------------------------------------------------------------ loading
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.path if self.path.suffix == ".safetensors"
                  else resolve_checkpoint(self.path)).stat()
            return st.st_mtime_ns, st.st_size
        except (CheckpointError, OSError):
            return None

    def load(self) -> None:
        stamp = self._stamp()
        D, step, epoch, names = None, None, None, []
        if self.path.suffix == ".safetensors":
            loaded = load_exported(self.path, self.device)
        else:
            state = load_checkpoint(self.path, map_location=self.device)
            loaded = generator_from_state(state, self.path, self.device)
            step, epoch = state.get("step"), state.get("epoch")
            names = list((state.get("resolved") or {}).get("class_names") or [])
            if len(loaded.sample_shape) == 1:  # the toy: D's decision surface is part of the view
                D = discriminator_from_state(state, self.path, self.device)
        editor = Editor(loaded.G, loaded.num_classes, self.k, self.device)
        with self.lock:
            self.loaded, self.editor, self.D = loaded, editor, D
            self.step, self.epoch, self.stamp = step, epoch, stamp
            self.class_names = [str(n) for n in names][: loaded.num_classes]
            self.loaded_at = time.time()

    def reload(self) -> dict:
        """Load the newest checkpoint (a run still training writes new ones)."""
        self.load()
        return self.info()

    @property
    def is_points(self) -> bool:
        return len(self.loaded.sample_shape) == 1

    def info(self) -> dict:
        ed, cfg = self.editor, self.loaded.cfg
        G = ed.G
        return {
            "run": str(self.path), "name": cfg.name, "arch": cfg.model.arch,
            "kind": "points" if self.is_points else "images",
            "shape": list(self.loaded.sample_shape), "classes": self.loaded.num_classes,
            "class_names": self.class_names, "space": ed.space, "dim": ed.dim,
            "truncation": ({"name": "psi", "min": 0.0, "max": 1.0, "neutral": 1.0}
                           if ed.space == "w" else
                           {"name": "threshold", "min": 0.0, "max": 3.0, "neutral": 0.0}),
            "directions": [{"index": i, "share": float(s)} for i, s in enumerate(ed.dirs.shares)],
            "mix_groups": list(G.style_groups()) if ed.space == "w" else [],
            "step": self.step, "epoch": self.epoch, "checkpoint_changed": self.changed(),
            "can_project": not self.is_points, "project_steps": self.project_steps,
        }

    def changed(self) -> bool:
        """Whether the file on disk differs from the one loaded (a newer checkpoint)."""
        now = self._stamp()
        return now is not None and now != self.stamp

    # ------------------------------------------------------------------ requests
    def state(self, params: Mapping[str, str]) -> EditState:
        """An :class:`EditState` from query parameters; anything off is a :class:`BadRequest`."""
        ed = self.editor
        s = EditState(seed=_number(params, "seed", int, 0, 0, MAX_SEED))
        s.class_index = _number(params, "class", int, None, -1, 10 ** 6)
        if s.class_index == -1:
            s.class_index = None
        if self.loaded.num_classes and s.class_index is None:
            s.class_index = 0
        s.truncation = _number(params, "trunc", float, None, 0, 1e6)
        if s.truncation is not None and ed.space == "z" and s.truncation == 0:
            s.truncation = None
        for key in params:
            if key.startswith("d") and key[1:].isdigit():
                v = _number(params, key, float, 0.0, -100, 100)
                if v:
                    s.strengths[int(key[1:])] = v
        s.seed2 = _number(params, "seed2", int, None, 0, MAX_SEED)
        s.t = _number(params, "t", float, 0.0, 0, 1)
        s.mix_seed = _number(params, "mix_seed", int, None, 0, MAX_SEED)
        mix = params.get("mix") or None
        if mix is not None and mix not in MIX_GROUPS:
            raise BadRequest(f"mix must be one of {', '.join(MIX_GROUPS)}, got {mix!r}")
        s.mix = mix
        lid = params.get("latent") or None
        if lid is not None:
            with self.lock:
                if lid not in self.latents:
                    raise BadRequest(f"latent {lid!r} is not known to this server (latents live "
                                     "while it runs: upload the .npy again)")
                self.latents.move_to_end(lid)
                s.latent = self.latents[lid]
        try:
            ed.check(s)
        except GanforgeError as e:
            raise BadRequest(str(e)) from None
        return s

    def image_png(self, s: EditState) -> bytes:
        if self.is_points:
            return self.points_png(s)
        with self.lock:
            img = self.editor.image(s)
        return _png(to_uint8(img)[0].permute(1, 2, 0).numpy())

    def grid_png(self, s: EditState, n: int = GRID, cols: int = 4) -> bytes:
        """``n`` samples from seeds ``seed+1 ...`` with the state's class and truncation."""
        ed = self.editor
        base = EditState(class_index=s.class_index, truncation=s.truncation)
        with self.lock:
            lats = torch.cat([ed.seed_latent(s.seed + 1 + i, base) for i in range(n)])
            imgs = to_uint8(ed.render(lats, ed.labels(base, n)))
        grid = make_grid(imgs, (n + cols - 1) // cols, cols, pad=0)
        return _png(grid)

    def latent_npy(self, s: EditState) -> bytes:
        with self.lock:
            lat = self.editor.latent(s)
        buf = io.BytesIO()
        np.save(buf, lat.numpy().astype(np.float32))
        return buf.getvalue()

    def add_latent(self, latent: torch.Tensor) -> str:
        lid = hashlib.sha256(latent.numpy().tobytes()).hexdigest()[:16]
        with self.lock:
            self.latents[lid] = latent
            self.latents.move_to_end(lid)
            while len(self.latents) > MAX_LATENTS:
                self.latents.popitem(last=False)
        return lid

    def upload_latent(self, data: bytes) -> str:
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise BadRequest("the upload is not a .npy array (save one with numpy.save, or "
                             "download a latent from this page)") from None
        try:
            t = latent_from_array(arr, self.editor, "the upload")
        except GanforgeError as e:
            raise BadRequest(str(e)) from None
        return self.add_latent(t)

    # ------------------------------------------------------------------ projection
    def start_projection(self, data: bytes, class_index: int | None = None) -> str:
        """Check the upload now (a bad one is refused at once), project it in a thread."""
        if self.is_points:
            raise BadRequest("a 2-D point generator has no images to project")
        if any(j["state"] == "running" for j in self.jobs.values()):
            raise BadRequest("a projection is already running; wait for it to finish")
        try:
            target = read_target(data, self.loaded.sample_shape, name="the upload")
        except GanforgeError as e:
            raise BadRequest(str(e)) from None
        if class_index is not None and not 0 <= class_index < max(1, self.loaded.num_classes):
            raise BadRequest(f"class {class_index} does not exist in this model")
        job = uuid.uuid4().hex[:12]
        self.jobs[job] = {"state": "running", "step": 0, "steps": self.project_steps}
        while len(self.jobs) > 64:
            self.jobs.pop(next(iter(self.jobs)))
        editor = self.editor
        threading.Thread(target=self._project, args=(job, editor, target, class_index),
                         daemon=True).start()
        return job

    def _project(self, job: str, editor: Editor, target: torch.Tensor,
                 class_index: int | None) -> None:
        rec = self.jobs[job]

        def progress(step: int, steps: int) -> None:
            rec["step"] = step

        try:
            res = project(editor, target, steps=self.project_steps,
                          class_index=class_index if editor.num_classes else None,
                          progress=progress)
            rec.update(state="done", latent=self.add_latent(res.latents),
                       psnr=float(res.psnr[0]), ssim=float(res.ssim[0]),
                       seconds=round(res.seconds, 2),
                       **({"class": int(res.classes[0])} if res.classes is not None else {}))
        except Exception as e:  # noqa: BLE001 -- reported to the page, the server keeps serving
            rec.update(state="failed", error=str(e).splitlines()[0] if str(e) else repr(e))

    # ------------------------------------------------------------------ the 2-D toy
    def _plane(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The toy's fixed view: bounds (real data's mean ± 4 standard deviations), the real
        points and D's decision surface as RGB pixels (red: D says real, blue: fake), computed
        once per checkpoint."""
        if getattr(self, "_plane_for", None) == self.stamp:
            return self._plane_cache
        real = real_points(self.loaded.cfg.data, POINTS).numpy()
        mu, sd = real.mean(0), real.std(0)
        half = 4 * sd.max()
        lo, hi = mu - half, mu + half
        xs = np.linspace(lo[0], hi[0], PLOT)
        ys = np.linspace(hi[1], lo[1], PLOT)  # row 0 is the top
        gx, gy = np.meshgrid(xs, ys)
        grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
        if self.D is not None:
            with torch.no_grad():
                p = torch.sigmoid(self.D(grid.to(self.device))).float().cpu().numpy()
            p = p.reshape(PLOT, PLOT, 1)
        else:
            p = np.full((PLOT, PLOT, 1), 0.5)
        white, red, blue = (np.array(c, np.float64) for c in
                            ((255, 255, 255), (214, 96, 77), (67, 147, 195)))
        heat = np.where(p >= 0.5, white + (red - white) * (2 * p - 1),
                        white + (blue - white) * (1 - 2 * p))
        self._plane_cache = (np.stack([lo, hi]), real, heat.astype(np.uint8))
        self._plane_for = self.stamp
        return self._plane_cache

    def points_png(self, s: EditState) -> bytes:
        """Real (dark blue) and generated (orange) points over D's decision surface."""
        ed = self.editor
        z = truncated_noise(POINTS, ed.dim, s.seed, s.truncation)
        if s.seed2 is not None and s.t > 0:
            z = z.lerp(truncated_noise(POINTS, ed.dim, s.seed2, s.truncation), s.t)
        for k, v in s.strengths.items():
            z = z + v * ed.dirs.vectors[k]
        with self.lock:
            bounds, real, heat = self._plane()
            fake = ed.render(z, None).numpy()
        img = heat.copy()
        for pts, colour in ((real, (20, 50, 120)), (fake, (255, 127, 14))):
            uv = (pts - bounds[0]) / (bounds[1] - bounds[0]) * (PLOT - 1)
            col, row = np.rint(uv[:, 0]).astype(int), np.rint((PLOT - 1) - uv[:, 1]).astype(int)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    r, c = row + dr, col + dc
                    ok = (r >= 0) & (r < PLOT) & (c >= 0) & (c < PLOT)
                    img[r[ok], c[ok]] = colour
        return _png(img)
