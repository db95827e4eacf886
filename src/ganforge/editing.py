"""Latent-space editing: closed-form directions (SeFa), the edit space of a generator, and the
state of an edit (seed, class, truncation, interpolation, directions, style mixing) rendered.

Every generator says which space it is edited in (``G.latent_space``): ``"z"`` for the DCGAN,
FastGAN-style, MLP and toy generators, ``"w"`` for the style-based one, whose mapping network
is run once and whose synthesis network then takes one w per layer. A *latent* here is a
float32 array in that space: ``(1, z_dim)`` for z, ``(1, w_dim)`` or, per layer, ``(1, num_ws,
w_dim)`` for w. The same arrays are what ``ganforge project`` writes and ``ganforge edit`` and
the explorer read.

SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021): the
first layer that reads the latent is affine, ``y = A x + b``; the unit directions ``n`` that
change ``y`` most are the top eigenvectors of ``AᵀA`` (rows of A normalised first, as in the
paper's code), found in closed form in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .errors import GanforgeError
from .generator import slerp, truncated_noise

MIX_GROUPS = ("coarse", "middle", "fine")


@dataclass(frozen=True)
class Directions:
    """The top SeFa directions of a generator: unit vectors (K, dim), each one's share of the
    variance of ``AᵀA`` (sums to 1 over all dim directions), and the standard deviation of the
    generator's latents along each (1 in z; measured from samples in w), the unit of a slider."""

    vectors: torch.Tensor
    shares: torch.Tensor
    scales: torch.Tensor


def sefa(weight: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` eigenvectors (rows, unit norm) of ``AᵀA`` for ``A = weight`` (out, dim)
    with its rows normalised, and each eigenvalue's share of their sum. Signs are fixed so the
    largest entry of each vector is positive (the result is deterministic)."""
    A = weight.detach().double()
    A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    vals, vecs = torch.linalg.eigh(A.T @ A)  # ascending
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1).T
    k = min(k, len(vals))
    vecs = vecs[:k]
    sign = torch.sign(vecs.gather(1, vecs.abs().argmax(1, keepdim=True)))
    return (vecs * sign).float(), (vals[:k] / vals.sum().clamp_min(1e-30)).float()


def edit_space(G: nn.Module) -> str:
    space = getattr(G, "latent_space", None)
    if space not in ("z", "w"):
        raise GanforgeError(f"{type(G).__name__} does not say which latent space it is edited "
                            "in (latent_space 'z' or 'w')")
    return space


def space_dim(G: nn.Module) -> int:
    return int(G.w_dim) if edit_space(G) == "w" else int(G.z_dim)


@torch.no_grad()
def mapped(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """w = mapping(z, y) of a style-based G, without truncation and without updating w_avg."""
    was = G.mapping.training
    G.mapping.eval()
    try:
        return G.mapping(z, y, truncation_psi=1.0)
    finally:
        G.mapping.train(was)


@torch.no_grad()
def directions(G: nn.Module, k: int = 8, num_classes: int = 0, samples: int = 1000
               ) -> Directions:
    """The top ``k`` SeFa directions of ``G`` in its edit space, with slider units."""
    vectors, shares = sefa(G.sefa_weight(), k)
    if edit_space(G) == "z":
        scales = torch.ones(len(vectors))
    else:
        z = truncated_noise(samples, G.z_dim, seed=2 ** 31 - 1)
        y = (torch.arange(samples) % num_classes) if num_classes else None
        dev = G.mapping.w_avg.device
        w = mapped(G, z.to(dev), None if y is None else y.to(dev)).float().cpu()
        scales = (w @ vectors.T).std(0).clamp_min(1e-6)
    return Directions(vectors, shares, scales)


@dataclass
class EditState:
    """What the explorer shows: every field has a neutral default. ``truncation``: ψ in [0, 1]
    in w (1 = none), the threshold |z| <= t in z (0 = none). ``strengths``: slider values per
    direction, in units of the latents' spread along it. ``mix``: the style group whose w comes
    from ``mix_seed`` (style-based G only). ``latent``: a given latent (a projection) instead of
    the seed's."""

    seed: int = 0
    class_index: int | None = None
    truncation: float | None = None
    strengths: dict[int, float] = field(default_factory=dict)
    seed2: int | None = None
    t: float = 0.0
    mix_seed: int | None = None
    mix: str | None = None
    latent: torch.Tensor | None = None


class Editor:
    """A generator with its directions: turns an :class:`EditState` into its latent and image.
    ``lock`` guards G (one forward at a time when shared by threads)."""

    def __init__(self, G: nn.Module, num_classes: int, k: int = 8,
                 device: str | torch.device = "cpu") -> None:
        self.G, self.num_classes, self.device = G, num_classes, torch.device(device)
        self.space = edit_space(G)
        self.dim = space_dim(G)
        self.dirs = directions(G, k, num_classes)

    # ------------------------------------------------------------------ validation
    def check(self, s: EditState) -> None:
        if self.num_classes:
            if s.class_index is not None and not 0 <= s.class_index < self.num_classes:
                raise GanforgeError(f"class {s.class_index} is out of range: the model knows "
                                    f"classes 0..{self.num_classes - 1}")
        elif s.class_index is not None:
            raise GanforgeError("this model is unconditional: it has no classes to pick")
        if s.truncation is not None:
            lo, hi = (0.0, 1.0) if self.space == "w" else (0.0, 1e6)
            if not lo <= s.truncation <= hi:
                raise GanforgeError(f"truncation must be from {lo:g} to {hi:g} here "
                                    f"({'psi in w' if self.space == 'w' else 'a threshold in z'}),"
                                    f" got {s.truncation}")
        for k, v in s.strengths.items():
            if not 0 <= k < len(self.dirs.vectors):
                raise GanforgeError(f"direction {k} does not exist: this generator has "
                                    f"directions 0..{len(self.dirs.vectors) - 1}")
            if not -100 <= v <= 100:
                raise GanforgeError(f"strength {v} of direction {k} is outside -100..100")
        if not 0 <= s.t <= 1:
            raise GanforgeError(f"interpolation t must be from 0 to 1, got {s.t}")
        if s.mix is not None:
            if self.space != "w":
                raise GanforgeError("style mixing needs a style-based generator (model.arch="
                                    "stylegan2)")
            if s.mix not in self.G.style_groups():
                raise GanforgeError(f"style group {s.mix!r} is not one of "
                                    f"{', '.join(self.G.style_groups())}")
        if s.latent is not None:
            self.check_latent(s.latent)

    def check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        shape = tuple(latent.shape)
        ok = shape == (1, self.dim) or (self.space == "w" and shape == (1, self.G.num_ws, self.dim))
        if not ok:
            want = f"(1, {self.dim})" + (f" or (1, {self.G.num_ws}, {self.dim})"
                                         if self.space == "w" else "")
            raise GanforgeError(f"a latent of shape {shape} does not fit this generator: it "
                                f"takes {want} in {self.space}-space")
        if not torch.isfinite(latent).all():
            raise GanforgeError("the latent holds NaN or infinite values")
        return latent

    # ------------------------------------------------------------------ latents
    def labels(self, s: EditState, n: int = 1) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return torch.full((n,), s.class_index or 0, dtype=torch.long, device=self.device)

    def seed_latent(self, seed: int, s: EditState) -> torch.Tensor:
        """A seed's latent in the edit space, truncated as ``s`` says."""
        if self.space == "z":
            t = s.truncation if s.truncation else None
            return truncated_noise(1, self.dim, seed, t)
        z = truncated_noise(1, self.G.z_dim, seed).to(self.device)
        w = mapped(self.G, z, self.labels(s)).float().cpu()
        psi = 1.0 if s.truncation is None else s.truncation
        return self.G.mapping.w_avg.float().cpu().lerp(w, psi)

    def latent(self, s: EditState) -> torch.Tensor:
        """The latent the state shows: (1, dim), or (1, num_ws, w_dim) with a per-layer latent
        or style mixing."""
        self.check(s)
        base = s.latent.float().cpu() if s.latent is not None else self.seed_latent(s.seed, s)
        if s.seed2 is not None and s.t > 0:
            other = self.seed_latent(s.seed2, s)
            if base.dim() == 3:
                other = other[:, None].expand_as(base)
            if self.space == "z":
                flat = slerp(base.reshape(1, -1), other.reshape(1, -1), torch.tensor([s.t]))
                base = flat.reshape(base.shape)
            else:
                base = base.lerp(other, s.t)
        if s.strengths:
            d = self.dirs
            shift = sum(float(v) * float(d.scales[k]) * d.vectors[k] for k, v in s.strengths.items())
            base = base + (shift if base.dim() == 2 else shift[None, None])
        if s.mix is not None and s.mix_seed is not None:
            ws = base if base.dim() == 3 else base[:, None].repeat(1, self.G.num_ws, 1)
            ws = ws.clone()
            idx = list(self.G.style_groups()[s.mix])
            ws[:, idx] = self.seed_latent(s.mix_seed, s)[:, None]
            base = ws
        return base

    @torch.no_grad()
    def render(self, latent: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Images (or points) for latents in the edit space, float on the CPU, G in eval mode."""
        G = self.G
        was = G.training
        G.eval()
        try:
            x = latent.to(self.device)
            if self.space == "z":
                out = G(x) if y is None else G(x, y)
            else:
                ws = x if x.dim() == 3 else x[:, None].expand(-1, G.num_ws, -1)
                out = G.synthesis(ws)
            return out.float().cpu()
        finally:
            G.train(was)

    def image(self, s: EditState) -> torch.Tensor:
        """The state's image (1, C, H, W) in [-1, 1] (or its point (1, D))."""
        return self.render(self.latent(s), self.labels(s))


def latent_from_array(arr: np.ndarray, editor: Editor, what: str = "the latent") -> torch.Tensor:
    """A float array as a latent of ``editor``'s edit space: ``(dim,)``, ``(1, dim)`` and for w
    also ``(num_ws, dim)`` or ``(1, num_ws, dim)``; anything else is refused with the shapes
    that fit."""
    if arr.dtype.kind != "f":
        raise GanforgeError(f"{what} holds {arr.dtype} values; a latent is a float array")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if t.dim() == 1 or (t.dim() == 2 and editor.space == "w" and t.shape[0] == editor.G.num_ws):
        t = t[None]  # (dim,) or (num_ws, dim): one latent without its batch axis
    return editor.check_latent(t)


def load_latent(path, editor: Editor) -> torch.Tensor:
    """A latent saved as ``.npy`` (by ``project``, the explorer or ``edit``), checked against
    the generator's edit space."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise GanforgeError(f"{path} is not a readable .npy latent ({e})") from None
    return latent_from_array(arr, editor, str(path))
