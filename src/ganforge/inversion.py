"""Projection: the latent that makes a generator reproduce a given image (GAN inversion).

The latent is found by gradient descent in the generator's edit space (z for the DCGAN family,
FastGAN-style and MLP generators; w, optionally one w per layer and the noise maps, for the
style-based one), started from the best of a set of seeds (and classes, for a conditional G),
with Adam, a cosine-decayed learning rate and a regulariser that keeps the latent where the
generator was trained: z near the shell |z|² ≈ dim of N(0, I); w near its tracked average,
with decaying noise added early as in stylegan2-ada's projector.

The distance is chosen with ``loss``: ``pixels`` (mean squared error at full, ½, ¼ and ⅛
resolution, the default: docs/projection.md measures it against the others), ``d`` (the same plus
the run's own discriminator's features, layer by layer, each normalised by the target's energy)
or ``inception`` (the same plus the bundled TF-Inception pool features; slow on a CPU). Nothing
is downloaded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .editing import Editor, edit_space, mapped
from .errors import GanforgeError
from .generator import truncated_noise

LOSSES = ("pixels", "d", "inception")


# ----------------------------------------------------------------------------- image metrics


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (dB) of float images in [-1, 1], on the [0, 1] scale."""
    mse = ((a.float() - b.float()) / 2).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return (g / g.sum()).float()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5; the
    window is cut to the image for images under 11 pixels), K1 = 0.01, K2 = 0.03, data range 1,
    computed per channel on valid positions and averaged. Float images in [-1, 1]."""
    x, y = (a.double() + 1) / 2, (b.double() + 1) / 2  # float64: variances are differences
    c = x.shape[1]
    size = min(11, x.shape[-1], x.shape[-2])
    g = _gaussian_window(size, 1.5).double()
    win = (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()


# ----------------------------------------------------------------------------- distances


def multiscale_mse(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error at full, 1/2, 1/4 and 1/8 resolution (down to 4 pixels),
    summed: the coarse terms pull the layout into place before the fine ones matter."""
    total = torch.zeros(len(x), device=x.device)
    for k in range(4):
        if x.shape[-1] < 4:
            break
        total = total + (x - t).square().flatten(1).mean(1)
        x, t = F.avg_pool2d(x, 2), F.avg_pool2d(t, 2)
    return total


class DFeatures:
    """The outputs of a discriminator's convolution and linear layers, taken with forward hooks,
    but the last one to run (the logit): a perceptual distance the run already owns. None of
    these layers sees the class of a conditional D (its projection term comes after them), so
    any label will do."""

    def __init__(self, D: nn.Module, num_classes: int) -> None:
        self.D = D.eval().requires_grad_(False)
        self.num_classes = num_classes
        self.layers = [m for m in D.modules()
                       if isinstance(m, (nn.Conv2d, nn.Linear)) or type(m).__name__ in (
                           "EqualConv2d", "EqualLinear")]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        # hooks live for one call only: a shared D is left as it was found
        handles = [m.register_forward_hook(lambda _m, _i, o: out.append(o)) for m in self.layers]
        try:
            if self.num_classes:
                self.D(x, torch.zeros(len(x), dtype=torch.long, device=x.device))
            else:
                self.D(x)
        finally:
            for h in handles:
                h.remove()
        return out[:-1]


class Distance:
    """``distance(x, rows) -> per-image distance`` of generated ``x`` from ``targets[rows]``
    (targets in [-1, 1]; ``rows`` defaults to one row per target); ``feature_distance`` is the
    perceptual part alone (0 for ``pixels``). The targets' features are computed once."""

    def __init__(self, kind: str, targets: torch.Tensor, D: nn.Module | None = None,
                 num_classes: int = 0, inception_path: str | None = None,
                 feature_weight: float = 1.0) -> None:
        if kind not in LOSSES:
            raise GanforgeError(f"--loss must be one of {', '.join(LOSSES)}, got {kind!r}")
        self.kind, self.targets, self.weight = kind, targets, feature_weight
        self._target_feats: list[torch.Tensor] = []
        if kind == "d":
            if D is None:
                raise GanforgeError("--loss d needs the run's discriminator: give a run directory "
                                    "or checkpoint (an export holds G only)")
            self.features = DFeatures(D, num_classes)
        elif kind == "inception":
            from .metrics.features import InceptionFeatures  # only for this distance

            inc = InceptionFeatures(inception_path, device=targets.device)
            self.features = lambda x: [inc.model(inc.preprocess((x + 1) * 127.5))]
        if kind != "pixels":
            with torch.no_grad():
                self._target_feats = [f.detach().float() for f in self.features(targets)]

    def feature_distance(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        total = torch.zeros(len(x), device=x.device)
        if self.kind == "pixels":
            return total
        for f, t in zip(self.features(x), self._target_feats):
            t = t if rows is None else t[rows]
            energy = t.square().flatten(1).mean(1).clamp_min(1e-8)
            total = total + (f.float() - t).square().flatten(1).mean(1) / energy
        return total / max(1, len(self._target_feats))

    def __call__(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        d = multiscale_mse(x, self.targets if rows is None else self.targets[rows])
        return d if self.kind == "pixels" else d + self.weight * self.feature_distance(x, rows)


# ----------------------------------------------------------------------------- the optimisation


@dataclass
class Projection:
    latents: torch.Tensor  # (N, dim) or (N, num_ws, w_dim), float32 on the CPU
    images: torch.Tensor  # (N, C, H, W) in [-1, 1]
    classes: torch.Tensor | None  # (N,) the class chosen per image, conditional G only
    psnr: torch.Tensor
    ssim: torch.Tensor
    feature_distance: torch.Tensor
    frames: list[torch.Tensor]  # images at regular steps, for the GIF of the optimisation
    seconds: float
    noise: dict[str, torch.Tensor] | None = None  # optimised noise maps (style-based G)


def _candidates(editor: Editor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` starting latents per class (one class set for an unconditional G); in w the
    average w is always one of them."""
    classes = editor.num_classes
    z_dim = editor.G.z_dim
    z = truncated_noise(n * max(1, classes), z_dim, seed)
    y = (torch.arange(len(z)) // n) if classes else None
    if editor.space == "z":
        return z, y
    dev = editor.device
    w = mapped(editor.G, z.to(dev), None if y is None else y.to(dev)).float().cpu()
    w[::n] = editor.G.mapping.w_avg.float().cpu()
    return w, y


def _noise_buffers(G: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buf for name, buf in G.named_buffers() if name.endswith("noise_const")}


def _starts(editor: Editor, targets: torch.Tensor, candidates: int, starts: int, seed: int,
            class_index: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``starts`` best of ``candidates`` seeds (per class) for each target, by multi-scale
    pixel distance: rows ``i * starts ... (i + 1) * starts - 1`` belong to target ``i``."""
    cand, cy = _candidates(editor, candidates, seed)
    if cy is not None and class_index is not None:
        keep = cy == class_index
        cand, cy = cand[keep], cy[keep]
    dev = editor.device
    imgs = editor.render(cand, None if cy is None else cy.to(dev)).to(dev)
    dist = torch.stack([multiscale_mse(imgs, t.expand_as(imgs)) for t in targets])
    best = dist.topk(min(starts, len(cand)), dim=1, largest=False).indices.reshape(-1).cpu()
    return cand[best].clone(), None if cy is None else cy[best]


def project(editor: Editor, targets: torch.Tensor, steps: int = 300, loss: str = "pixels",
            D: nn.Module | None = None, lr: float = 0.05, wplus: bool = False,
            noise: bool = False, init: torch.Tensor | None = None,
            class_index: int | None = None, seed: int = 0, candidates: int = 256,
            starts: int = 4, frame_every: int = 10, inception_path: str | None = None,
            w_noise: float = 0.0, progress: Callable[[int, int], None] | None = None
            ) -> Projection:
    """Project ``targets`` (N, C, H, W) in [-1, 1] into ``editor``'s generator.

    The search starts from the ``starts`` closest of ``candidates`` seeds (and classes, for a
    conditional G, unless ``class_index`` fixes it), optimises all of them for the first fifth
    of the ``steps`` and goes on with the best; ``init`` (a latent of the edit space, one row or
    one per target) replaces that search. ``wplus`` optimises one w per layer, ``noise`` the
    noise maps too (style-based G only); ``w_noise`` adds noise of that many w standard
    deviations to w early on (stylegan2-ada's projector uses 0.05; 0 measured better here).
    ``progress(step, steps)`` is called after every step."""
    G = editor.G
    if targets.dim() != 4:
        raise GanforgeError("projection is for image generators")
    if (wplus or noise) and editor.space != "w":
        raise GanforgeError("--wplus and --noise are for the style-based generator "
                            "(model.arch=stylegan2); this one is projected in z")
    if not 1 <= steps <= 100_000:
        raise GanforgeError(f"--steps must be from 1 to 100000, got {steps}")
    t0 = time.perf_counter()
    dev = editor.device
    targets = targets.to(dev).float()
    n = len(targets)
    if editor.num_classes and class_index is not None and not 0 <= class_index < editor.num_classes:
        raise GanforgeError(f"--class {class_index} is out of range: the model knows classes "
                            f"0..{editor.num_classes - 1}")
    if noise and n != 1:
        raise GanforgeError("--noise optimises one set of noise maps: project one image at a "
                            "time with it")
    saved_noise = {k: v.clone() for k, v in _noise_buffers(G).items()}
    G.eval().requires_grad_(False)
    try:
        with torch.no_grad():
            if init is not None:
                per = 1
                start = editor.check_latent(init[:1]) if len(init) == 1 else init
                start = start.expand(n, *start.shape[1:]).clone().float()
                y = (torch.full((n,), class_index or 0, dtype=torch.long)
                     if editor.num_classes else None)
            else:
                start, y = _starts(editor, targets, candidates, starts, seed, class_index)
                per = len(start) // n
        if editor.space == "w" and wplus and start.dim() == 2:
            start = start[:, None].repeat(1, G.num_ws, 1)
        w_avg = G.mapping.w_avg.float().to(dev) if editor.space == "w" else None
        w_std = _w_spread(editor, seed) if w_avg is not None else None
        noise_bufs = _noise_buffers(G) if noise else {}
        explore = max(1, steps // 5) if per > 1 else 0
        rng = torch.Generator().manual_seed(seed)  # the noise on w: same seed, same projection
        distance = Distance(loss, targets, D, editor.num_classes, inception_path)
        for b in noise_bufs.values():
            b.requires_grad_(True)

        def begin(lat: torch.Tensor, rows_y: torch.Tensor | None):
            latent = lat.to(dev).requires_grad_(True)
            opt = torch.optim.Adam([latent, *noise_bufs.values()], lr=lr, betas=(0.9, 0.999))
            return latent, None if rows_y is None else rows_y.to(dev), opt

        def keep_best():
            """Each target's best start (rows ``i * per ...`` are target ``i``'s)."""
            with torch.no_grad():
                d = distance(_synth(editor, latent, yd), rows).reshape(n, per)
            return torch.arange(n) * per + d.argmin(1).cpu()

        rows = torch.arange(n).repeat_interleave(per).to(dev)
        latent, yd, opt = begin(start, y)
        frames: list[torch.Tensor] = []
        for step in range(steps):
            if step == explore and per > 1:  # go on with each target's best start
                pick = keep_best()
                y = None if y is None else y[pick]
                latent, yd, opt = begin(latent.detach()[pick].clone(), y)
                per, rows = 1, None
            frac = step / max(1, steps)
            # cosine decay after a 5% warm-up, as in stylegan2-ada's projector
            ramp = min(1.0, frac / 0.05) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
            for g in opt.param_groups:
                g["lr"] = lr * max(ramp, 0.02)
            x_lat = latent
            if w_avg is not None and w_noise > 0:
                strength = w_noise * w_std * max(0.0, 1 - frac / 0.75) ** 2
                x_lat = latent + torch.randn(latent.shape, generator=rng).to(dev) * strength
            img = _synth(editor, x_lat, yd)
            total = distance(img, rows).sum() + _regulariser(editor, latent, w_avg, w_std).sum()
            if noise:
                total = total + 1e3 * sum(_noise_reg(b) for b in noise_bufs.values())
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if noise:
                with torch.no_grad():  # keep each map at zero mean, unit variance
                    for b in noise_bufs.values():
                        b.sub_(b.mean()).div_(b.std().clamp_min(1e-8))
            if frame_every and step % frame_every == 0:
                frames.append(img.detach().float().cpu()[::per])
            if progress is not None:
                progress(step + 1, steps)
        if per > 1:  # fewer steps than the exploration: pick now
            pick = keep_best()
            y = None if y is None else y[pick]
            latent, yd = latent.detach()[pick], None if y is None else y.to(dev)
        with torch.no_grad():
            final = _synth(editor, latent, yd).float()
            feat = distance.feature_distance(final).cpu()
        frames.append(final.cpu())
        result = Projection(latent.detach().float().cpu(), final.cpu(),
                            None if y is None else y.cpu(), psnr(final, targets).cpu(),
                            ssim(final, targets).cpu(), feat, frames, time.perf_counter() - t0,
                            {k: v.detach().clone().cpu() for k, v in noise_bufs.items()}
                            if noise else None)
    finally:
        with torch.no_grad():
            for k, buf in _noise_buffers(G).items():
                buf.requires_grad_(False)
                buf.copy_(saved_noise[k])
    return result


def _w_spread(editor: Editor, seed: int, n: int = 512) -> float:
    """The root mean square distance of G's w from their average: the unit of w's regulariser."""
    G = editor.G
    dev = editor.device
    y = (torch.arange(n, device=dev) % editor.num_classes) if editor.num_classes else None
    w = mapped(G, truncated_noise(n, G.z_dim, seed + 1).to(dev), y).float()
    return float((w - G.mapping.w_avg.float()).square().sum(1).mean().sqrt().clamp_min(1e-3))


def _synth(editor: Editor, latent: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    G = editor.G
    if edit_space(G) == "z":
        return G(latent) if y is None else G(latent, y)
    ws = latent if latent.dim() == 3 else latent[:, None].expand(-1, G.num_ws, -1)
    return G.synthesis(ws)


def _regulariser(editor: Editor, latent: torch.Tensor, w_avg: torch.Tensor | None,
                 w_std: float | None) -> torch.Tensor:
    """Per-image penalty that keeps the latent where G was trained."""
    flat = latent.reshape(len(latent), -1, editor.dim)
    if w_avg is None:  # z: stay near the shell |z|^2 = dim where N(0, I) puts its mass
        return 1e-3 * (flat.square().sum(-1) / editor.dim - 1).square().sum(1)
    # w: a weak pull towards the average, and (w+) towards the per-layer mean of the latent
    pull = 1e-4 * ((flat - w_avg).square().sum(-1) / (w_std ** 2)).sum(1)
    spread = flat - flat.mean(1, keepdim=True)
    return pull + 1e-2 * (spread.square().sum(-1) / (w_std ** 2)).sum(1)


def _noise_reg(b: torch.Tensor) -> torch.Tensor:
    """stylegan2-ada's noise regulariser: spatial autocorrelation at every scale."""
    x = b[None, None]
    total = torch.zeros((), device=b.device)
    while True:
        total = total + (x * torch.roll(x, 1, dims=3)).mean().square()
        total = total + (x * torch.roll(x, 1, dims=2)).mean().square()
        if x.shape[-1] <= 8:
            break
        x = F.avg_pool2d(x, 2)
    return total
