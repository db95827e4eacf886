"""Starting a run from another run's weights (``train.init_from``): read the source once (a run
directory, a checkpoint or an export), give the new run the source's model and image size, and
copy G, D and G_ema into the freshly built networks tensor by tensor -- refusing, before any file
is written, a tensor whose shape does not fit, and re-initialising only what depends on the
number of classes when that changes. The counters of the new run start at zero; the optimizer
moments and the augmentation state come along only with ``train.init_optim``."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import Config, ConfigError
from ..data import describe
from ..errors import CheckpointError, GanforgeError
from ..generator import read_export, resolved_classes
from ..io import file_sha256, load_checkpoint, resolve_checkpoint
from ..validation import validate
from .resume import set_hyperparameters


@dataclass
class InitSource:
    """The weights a run starts from, read once on the CPU."""

    path: Path  # the file read: a checkpoint or an export's .safetensors
    kind: str  # "checkpoint" or "export"
    sha256: str
    cfg: Config  # the config the source was trained with
    sample_shape: tuple[int, ...]
    num_classes: int
    G: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor] | None = None  # an export holds no D
    G_ema: dict[str, torch.Tensor] | None = None
    state: dict[str, Any] = field(default_factory=dict)  # the whole checkpoint (optimizers, ADA)

    def record(self) -> dict[str, Any]:
        """What the new run records of its source (resolved.json, the summary, the report)."""
        resolved = self.state.get("resolved") or {}
        data = self.cfg.data
        return {"path": str(self.path), "kind": self.kind, "sha256": self.sha256,
                "data": data.name if data.name != "folder" else "folder",
                "data_path": resolved.get("data_path") or data.path or None,
                "examples": resolved.get("examples"),
                "step": self.state.get("step"), "images_seen": self.state.get("images_seen"),
                "arch": self.cfg.model.arch, "sample_shape": list(self.sample_shape)}


def read_init_source(spec: str | os.PathLike) -> InitSource:
    """The run directory, checkpoint or export (``.safetensors``, or its ``.json``) ``spec``."""
    p = Path(os.path.expanduser(str(spec)))
    if p.suffix == ".json" and p.with_suffix(".safetensors").is_file():
        p = p.with_suffix(".safetensors")
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise GanforgeError(f"train.init_from: {p} does not exist")
        return _read_export(p)
    try:
        ckpt = resolve_checkpoint(p)
    except CheckpointError as e:
        raise GanforgeError(f"train.init_from: {e}") from None
    state = load_checkpoint(ckpt)
    try:
        cfg = Config.from_dict(state["config"])
        shape = tuple(int(s) for s in state["sample_shape"])
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise GanforgeError(f"train.init_from: {ckpt} has no usable config ({e})") from None
    return InitSource(ckpt.resolve(), "checkpoint", file_sha256(ckpt), cfg, shape,
                      resolved_classes(state, cfg), state["G"], state.get("D"),
                      state.get("G_ema"), state)


def _read_export(p: Path) -> InitSource:
    try:
        cfg, shape, classes, tensors = read_export(p)
    except CheckpointError as e:
        raise GanforgeError(f"train.init_from: {e}") from None
    # An export holds G_ema's weights when the run kept one: they start both G and G_ema.
    return InitSource(p.resolve(), "export", file_sha256(p), cfg, shape, classes, tensors, None,
                      tensors, {})


def adopt_source(cfg: Config, source: InitSource, explicit: Sequence[str] = ()) -> Config:
    """``cfg`` with the source's model (every ``model.*`` key but those in ``explicit``, the keys
    the user set) and, for images, its resolution and channels: the new data is resized to
    them. Class conditioning follows the new data: kept when it has classes, dropped otherwise.
    Returns the validated config."""
    explicit = {k.split("=", 1)[0].strip() for k in explicit}
    out = dataclasses.replace(cfg)
    model = dataclasses.replace(source.cfg.model)
    for key in (f.name for f in dataclasses.fields(model)):
        if f"model.{key}" in explicit:
            setattr(model, key, getattr(cfg.model, key))
    if "model.conditional" not in explicit:
        model.conditional = source.cfg.model.conditional and describe(cfg.data).labelled
    if "model.num_classes" not in explicit:
        model.num_classes = cfg.model.num_classes
    data = dataclasses.replace(cfg.data)
    if len(source.sample_shape) == 3:
        channels, side = int(source.sample_shape[0]), int(source.sample_shape[-1])
        for key, value in (("resolution", side), ("channels", channels)):
            given = getattr(cfg.data, key)
            if f"data.{key}" in explicit and given and given != value:
                raise GanforgeError(
                    f"data.{key}={given}, but train.init_from={source.path} was trained at "
                    f"{key} {value}: its weights fit only that. Drop data.{key} (the new images "
                    f"are resized to {side}x{side}, {channels} channel(s))")
            setattr(data, key, value)
    out.model, out.data = model, data
    try:
        return validate(out)
    except ConfigError as e:
        raise GanforgeError(f"train.init_from={source.path}: with the source's model "
                            f"(model.arch={model.arch}) this run is not valid: {e}") from None


def _differing_model_keys(a: Config, b: Config) -> str:
    ma, mb = dataclasses.asdict(a.model), dataclasses.asdict(b.model)
    keys = [f"model.{k}={json.dumps(mb[k])} (source {json.dumps(ma[k])})" for k in ma
            if ma[k] != mb[k] and k not in ("conditional", "num_classes")]
    return ", ".join(keys) if keys else "none of the model keys differ"


def _merge(name: str, own: dict[str, torch.Tensor], src: dict[str, torch.Tensor],
           src_classes: int, own_classes: int, source: InitSource, cfg: Config
           ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``own`` (a freshly built network's state dict) with every tensor of ``src`` copied in;
    tensors that depend on the number of classes keep their fresh values when it changed (the
    names are returned); anything else that does not fit is refused, naming the tensor."""
    out, fresh = dict(own), []
    conditioning_changed = (src_classes == 0) != (own_classes == 0)
    for key, value in own.items():
        theirs = src.get(key)
        if theirs is None:
            if conditioning_changed:
                fresh.append(key)
                continue
            raise GanforgeError(
                f"train.init_from: {name}.{key} of this run is not in {source.path}: the "
                f"architectures differ ({_differing_model_keys(source.cfg, cfg)}); set them as "
                "the source has them, or start from random weights")
        if tuple(theirs.shape) == tuple(value.shape):
            out[key] = theirs.to(value.dtype)
            continue
        swapped = tuple(own_classes if (s == src_classes and s != v) else s
                        for s, v in zip(theirs.shape, value.shape))
        if src_classes and own_classes and src_classes != own_classes and \
                len(theirs.shape) == len(value.shape) and swapped == tuple(value.shape):
            fresh.append(key)  # a class embedding or projection: re-initialised
            continue
        raise GanforgeError(
            f"train.init_from: the layer {name}.{key} has shape {tuple(theirs.shape)} in "
            f"{source.path} and {tuple(value.shape)} in this run, so its weights cannot be "
            f"copied ({_differing_model_keys(source.cfg, cfg)}); nothing was written")
    extra = [k for k in src if k not in own]
    if extra and not conditioning_changed:
        raise GanforgeError(f"train.init_from: {source.path} has {name}.{extra[0]}, which this "
                            f"run's {name} lacks: the architectures differ "
                            f"({_differing_model_keys(source.cfg, cfg)})")
    return out, fresh + [f"{k} (dropped)" for k in extra]


def _module(key: str) -> str:
    """The layer a state-dict key belongs to (``embed`` for ``embed.weight`` and for spectral
    norm's ``embed.parametrizations.weight.original``)."""
    if ".parametrizations." in key:
        return key.split(".parametrizations.")[0]
    return key.rsplit(".", 1)[0] if "." in key else key


def initialise(gan: Any, source: InitSource, init_optim: bool) -> list[str]:
    """Copy the source's G, D and G_ema into ``gan`` (a freshly built :class:`~.step.GAN`) and,
    with ``init_optim``, its optimizer moments and augmentation state. Refuses (before the run
    writes anything) what does not fit; returns notes for the user."""
    cfg, notes = gan.cfg, []
    own_classes, src_classes = gan.num_classes, source.num_classes
    g, fresh_g = _merge("G", gan.G.state_dict(), source.G, src_classes, own_classes, source, cfg)
    gan.G.load_state_dict(g)
    fresh_d: list[str] = []
    if source.D is not None:
        d, fresh_d = _merge("D", gan.D.state_dict(), source.D, src_classes, own_classes, source,
                            cfg)
        gan.D.load_state_dict(d)
    else:
        notes.append(f"{source.path.name} is an export (G only): D starts from random weights")
    if gan.ema is not None:
        ema_src = source.G_ema if source.G_ema is not None else source.G
        e, _ = _merge("G_ema", gan.ema.G_ema.state_dict(), ema_src, src_classes, own_classes,
                      source, cfg)
        gan.ema.G_ema.load_state_dict(e)
        if source.G_ema is None:
            notes.append("the source kept no G_ema: G_ema starts as a copy of its G")
    if fresh_g or fresh_d:
        what = ", ".join(dict.fromkeys([f"G.{_module(k)}" for k in fresh_g]
                                       + [f"D.{_module(k)}" for k in fresh_d]))
        notes.append(f"the number of classes changed ({src_classes} in the source, "
                     f"{own_classes} here): re-initialised {what}")
    if init_optim:
        notes += _init_optimizers(gan, source, bool(fresh_g or fresh_d))
    return notes


def _init_optimizers(gan: Any, source: InitSource, classes_changed: bool) -> list[str]:
    """The source's optimizer moments (and ADA's probability) for ``train.init_optim``; the
    hyperparameters stay this run's."""
    st, cfg, scfg = source.state, gan.cfg, source.cfg
    why = None
    if "opt_G" not in st:
        why = f"{source.path.name} is an export, which holds no optimizer state"
    elif (cfg.optim_G.name, cfg.optim_D.name) != (scfg.optim_G.name, scfg.optim_D.name):
        why = (f"the optimizers differ (source {scfg.optim_G.name}/{scfg.optim_D.name}, this run "
               f"{cfg.optim_G.name}/{cfg.optim_D.name})")
    elif classes_changed:
        why = "the number of classes changed, so the parameters differ"
    elif cfg.train.freeze_d != scfg.train.freeze_d:
        why = (f"train.freeze_d={cfg.train.freeze_d} here and {scfg.train.freeze_d} in the "
               "source: D's optimizer holds a different set of parameters")
    if why:
        raise GanforgeError(f"train.init_optim=true: {why}; drop train.init_optim to start the "
                            "optimizers afresh")
    for opt, key, oc in ((gan.opt_G, "opt_G", cfg.optim_G), (gan.opt_D, "opt_D", cfg.optim_D)):
        opt.load_state_dict(st[key])
        set_hyperparameters(opt, oc)  # the moments come along, not the source's settings
        for group in opt.param_groups:
            group["lr"] = oc.lr
    notes = ["optimizer moments from the source"]
    if gan.ada is not None and "ada" in st:
        gan.ada.load_state_dict(st["ada"])
        notes.append(f"augmentation probability p={gan.ada.p_value:.3f} from the source")
    return notes
