"""``train()``: everything a run needs around the loop -- the config (or a resume's), the
device and seeds, the data, the run directory and its lock, the trainer, signals turned into a
checkpoint, the summary. The CLI only parses its arguments into a call of this."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..config import Config, apply_overrides
from ..data import folder_path, folder_resolution, is_image_folder, load_dataset, resolve_classes
from ..errors import GanforgeError, describe_state_dict_error
from ..io import read_jsonl
from ..io.lock import RunLock, refuse_if_locked
from ..io.rundir import prepare_run_dir, write_run_files, write_summary
from ..runtime import resolve_device, seed_everything
from ..validation import is_validated, validate
from .resume import Resumption, apply_optimizer_settings, check_same_data, prepare_resume
from .init import adopt_source, initialise, read_init_source
from .memory import check_fits
from .step import GAN
from .trainer import Trainer, TrainingInterrupted, TrainResult, _StopRequested


def _run(trainer: Trainer, resumed: Resumption | None, run_dir: Path, cfg: Config,
         resolved: dict[str, Any], quiet: bool, is_main: bool) -> None:
    """Continue from ``resumed`` (when resuming), write the run files, train with SIGINT/SIGTERM
    turned into a checkpoint and a clean stop."""
    gan = trainer.gan
    if resumed is not None:
        apply_optimizer_settings((gan.opt_G, gan.opt_D), cfg, resumed.saved, trainer.pos)
        trainer.set_lr()
        trainer.logger.reset_records([r for r in read_jsonl(run_dir / "metrics.jsonl")
                                      if r.get("epoch", 0) <= gan.epoch])
        if not quiet and is_main:
            tqdm.write(f"resuming {run_dir} at epoch {gan.epoch}, step {gan.step}", file=sys.stdout)
    if is_main:  # written once the checkpoint is known to fit
        write_run_files(run_dir, cfg.to_json(), resolved)

    def _on_signal(signum, frame):  # finish the current step, checkpoint, exit
        trainer.stop_signal = signal.Signals(signum).name

    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            handlers[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread
            pass
    try:
        trainer.run()
    except _StopRequested as e:
        raise TrainingInterrupted(
            f"{e} received: saved a checkpoint at epoch {gan.epoch}, step {gan.step}; continue with "
            f"`ganforge train --resume {run_dir}`"
        ) from None
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)


def _say_source(rec: dict[str, Any]) -> None:
    shape = "x".join(str(s) for s in rec["sample_shape"][::-1][:2]) if len(rec["sample_shape"]) == 3 \
        else str(rec["sample_shape"])
    seen = f", {rec['images_seen']:,} images seen" if rec.get("images_seen") else ""
    on = rec.get("data_path") or rec.get("data")
    print(f"starting from {rec['path']} ({rec['arch']}, {shape}{seen}, trained on {on}; sha256 "
          f"{rec['sha256'][:12]}); the counters start at 0", file=sys.stdout)
    for note in rec["notes"]:
        print(f"  {note}", file=sys.stdout)


def train(cfg: Config | None = None, out_dir: str | os.PathLike | None = None, *,
          resume: str | os.PathLike | bool | None = None, overrides: Sequence[str] = (),
          progress: bool = True, quiet: bool = False, overwrite: bool = False) -> TrainResult:
    """Train ``cfg`` into ``out_dir``; or continue the run ``resume`` (a run directory or one of
    its checkpoints; ``True``: ``out_dir``) exactly -- weights, optimizers, counters, data
    position and RNG states -- with the config saved in it and ``overrides`` (``key=value``)
    applied, or with ``cfg`` when given. docs/robustness.md lists what a resume may change;
    anything it refuses is refused before a file of the run changes.

    A new run with ``train.init_from`` starts from that run's (checkpoint's, export's) weights,
    with its model and image size; ``overrides`` name the keys the user set, which the source
    does not replace."""
    resumed = None
    if resume is not None and resume is not False:
        where = out_dir if resume is True else resume
        if where is None:
            raise GanforgeError("train(resume=True) needs out_dir: the run to continue")
        resumed = prepare_resume(where, overrides, cfg)
        cfg, out_dir = resumed.cfg, resumed.run_dir
    elif cfg is None or out_dir is None:
        raise GanforgeError("train() needs a config and an output directory, or resume=RUN")
    elif overrides:
        cfg = validate(apply_overrides(cfg, list(overrides)))
    cfg = cfg if is_validated(cfg) else validate(cfg)
    source = None
    if resumed is None and cfg.train.init_from:  # the source's model and image size, read once
        source = read_init_source(cfg.train.init_from)
        cfg = adopt_source(cfg, source, explicit=overrides)
    dinfo, rank_device = distributed.init_from_env(cfg.train.device)
    device = rank_device or resolve_device(cfg.train.device)
    if dinfo.enabled and cfg.train.batch_size < dinfo.world_size:
        raise GanforgeError(f"train.batch_size={cfg.train.batch_size} is the global batch; it must "
                            f"be at least the number of processes ({dinfo.world_size})")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if resumed is None and is_image_folder(cfg.data) and not cfg.data.resolution:
        # a new run fixes the folder's size in its config, so a resume reads the same size
        res, why = folder_resolution(cfg.data, device.type)
        cfg = validate(apply_overrides(cfg, [f"data.resolution={res}"]))
        if not quiet and dinfo.is_main:
            print(f"data.resolution={res}: {why}", file=sys.stdout)
    seed_everything(cfg.train.seed, dinfo.rank)
    run_dir = Path(out_dir)
    state = None if resumed is None else resumed.state
    if resumed is not None:
        for stale in run_dir.glob(".*.tmp"):  # half-written files of a killed process
            stale.unlink()
    # Rank 0 decodes an image folder into its prepared copy first; the others then open it.
    if not dinfo.is_main:
        distributed.barrier()
    dataset = load_dataset(cfg.data, seed=cfg.train.seed, progress=progress and not quiet)
    if dinfo.is_main:
        distributed.barrier()
    num_classes = resolve_classes(cfg, dataset)
    check_fits(cfg, dataset.sample_shape, num_classes, device)  # before the run's files change
    if resumed is not None:
        check_same_data(resumed, len(dataset), quiet=not dinfo.is_main)  # said even with --quiet
    if resumed is None and dinfo.is_main and run_dir.is_dir():
        refuse_if_locked(run_dir)
    dataset = dataset.to(device)

    gan = GAN(cfg, dataset.sample_shape, device, num_classes)
    resolved = {**gan.resolved(), "class_names": list(dataset.class_names),
                "data_path": folder_path(cfg.data) if is_image_folder(cfg.data) else cfg.data.path,
                "examples": len(dataset), "processes": dinfo.world_size}
    if source is not None:  # refused here, before any file is written, when it does not fit
        notes = initialise(gan, source, cfg.train.init_optim)
        resolved["init_from"] = {**source.record(), "notes": notes}
        if not quiet and dinfo.is_main:
            _say_source(resolved["init_from"])
    elif state is not None and "init_from" in (state.get("resolved") or {}):
        resolved["init_from"] = state["resolved"]["init_from"]  # a resumed fine-tune keeps it
    if resumed is None:
        if dinfo.is_main:
            prepare_run_dir(run_dir, overwrite)
        distributed.barrier()
    if state is not None and tuple(state.get("sample_shape", ())) != gan.sample_shape:
        raise GanforgeError(f"the checkpoint in {run_dir} was trained on data of shape "
                            f"{tuple(state['sample_shape'])}, this config gives {gan.sample_shape}")
    trainer = Trainer(cfg, run_dir, dataset, gan, resolved, progress, quiet)
    if state is not None:
        try:
            trainer.restore(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise GanforgeError(f"the checkpoint in {run_dir} does not fit this config "
                                f"({describe_state_dict_error(e)}); resume without overrides "
                                "that change the model") from None
    lock = RunLock(run_dir) if dinfo.is_main else None  # before the run's files change
    try:
        _run(trainer, resumed, run_dir, cfg, resolved, quiet, dinfo.is_main)
    finally:
        trainer.bar.close()
        trainer.logger.close()
        if lock is not None:
            lock.release()

    summary = trainer.summary()
    if dinfo.is_main:
        write_summary(run_dir, summary)
    return TrainResult(run_dir, summary)
