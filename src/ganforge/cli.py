"""Command line: each subcommand parses arguments into a config and calls one library function."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

from . import __version__, distributed
from .ablate import ablate
from .config import Config, apply_overrides
from .validation import key_specs, keys_markdown, validate
from .data.idx import IDX_DATASETS, download, verify_present
from .data import folder_path, resolve_shape
from .data.named_folders import FOLDER_DATASETS, folder_problem, locate_folder
from .data.prepared import prepare_folder
from .data.roots import download_dir
from .errors import GanforgeError
from .evaluate import evaluate
from .table import format_table
from .export import export_generator
from .io.atomic import is_write_failure
from .metrics.classifier import train_classifier
from .presets import PRESETS, from_preset
from .cli_explore import add_explore_commands
from .cli_score import add_feature_flags, add_score_commands
from .report.html import write_report
from .runtime import check_device
from .sample import sample
from .training import TrainingInterrupted, train


def _unique_run_dir(preset: str) -> Path:
    base = Path("runs") / preset
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


def distributed_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def cmd_presets(args: argparse.Namespace) -> int:
    if args.markdown:
        print(keys_markdown(), end="")
        return 0
    if args.keys:
        for spec in key_specs():
            choices = f" ({' | '.join(spec.choices)})" if spec.choices else ""
            print(f"{spec.key}: {spec.type} = {spec.default!r}{choices}")
            print(textwrap.fill(spec.help, width=96, initial_indent="    ",
                                subsequent_indent="    "))
        return 0
    width = max(len(n) for n in PRESETS)
    for p in PRESETS.values():
        print(f"{p.name:<{width}}  {p.summary}")
        print(textwrap.fill(f"after {p.citation}", width=100, initial_indent=" " * (width + 2),
                            subsequent_indent=" " * (width + 2)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.preset and "=" in args.preset:  # `train --resume RUN key=value`: no preset given
        overrides.insert(0, args.preset)
        args.preset = None
    if args.data_dir:
        overrides.append(f"data.path={args.data_dir}")
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.resume:
        if args.preset:
            raise GanforgeError("--resume continues a run with its own config: drop the preset "
                                f"'{args.preset}' (key=value overrides such as train.epochs=40 "
                                "are allowed)")
    else:
        if not args.preset:
            raise GanforgeError("name a preset to train (see `ganforge presets`), or give "
                                "--resume RUN to continue a run")
        cfg = from_preset(args.preset, overrides)
        out = Path(args.out) if args.out else _unique_run_dir(cfg.name)
    try:
        if args.resume:
            result = train(resume=args.resume, overrides=overrides, progress=not args.quiet,
                           quiet=args.quiet)
        else:
            result = train(cfg, out, overrides=overrides, progress=not args.quiet,
                           quiet=args.quiet, overwrite=args.overwrite)
    finally:
        world = distributed.info().world_size
        distributed.shutdown()
    if result is None or not (world == 1 or distributed_rank() == 0):
        return 0
    s = result.summary
    print(f"\ndone: {s['epochs']} epochs, {s['images_seen']} examples in {s['train_seconds']:.1f}s "
          f"on {s['device']}; final loss_D {s['final_loss_D']:.3f}, loss_G {s['final_loss_G']:.3f}")
    if "gaussian" in s:
        g = s["gaussian"]
        print(f"fitted mean {[round(v, 3) for v in g['fitted_mean']]} (true {g['true_mean']}), "
              f"mean error {g['mean_error']:.3f}, covariance error {100 * g['cov_rel_error']:.1f}%")
    if s.get("alarms"):
        print(f"alarms raised: {', '.join(sorted(set(s['alarms'])))} (see alarms.jsonl)")
    if s.get("best"):
        b = s["best"]
        print(f"best {b['metric']} {b['value']:.3f} at epoch {b['epoch']} ({b['checkpoint']})")
    print(f"results in {result.run_dir}/ (samples/, loss_curve.png, metrics.jsonl, summary.json, "
          "checkpoint.pt)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise GanforgeError(f"--seeds takes whole numbers separated by commas (e.g. 0,5,7), "
                            f"got {args.seeds!r}") from None
    out = sample(args.run, args.n, args.out, seed=args.seed, device=args.device,
                 overwrite=args.overwrite, truncation=args.truncation,
                 interpolate=args.interpolate, seeds=seeds, steps=args.steps, mode=args.mode,
                 walk=args.walk, frames=args.frames, class_index=args.class_index,
                 ema=not args.no_ema)
    what = ("an interpolation" if args.interpolate else "a latent walk" if args.walk
            else f"{args.n} samples")
    print(f"wrote {what} to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip()) or None
    res = evaluate(args.run, metrics=metrics, n=args.n, features=args.features,
                   device=args.device, seed=args.seed, inception_path=args.inception,
                   progress=not args.quiet, ema=not args.no_ema, n_reference=args.n_reference,
                   fast=args.fast, backend=args.backend)
    print(format_table(res))
    if "eval_json_set_aside" in res:
        print(f"ganforge: the old eval.json was not valid JSON; it was set aside as "
              f"{res['eval_json_set_aside']}", file=sys.stderr)
    if "eval_json_error" in res:
        print(f"ganforge: error: {res['eval_json_error']}", file=sys.stderr)
        return 2
    if "eval_json" in res:
        extra = "".join(f", {Path(res['eval_json']).parent / f}" for f in res.get("nn_files", []))
        print(f"written to {res['eval_json']}{extra}")
    return 0


def cmd_train_classifier(args: argparse.Namespace) -> int:
    rec = train_classifier(args.dataset, epochs=args.epochs, seed=args.seed,
                           data_dir=args.data_dir, progress=not args.quiet)
    print(f"{args.dataset} classifier: test accuracy {100 * rec['test_accuracy']:.2f}% after "
          f"{rec['epochs']} epochs ({rec['train_seconds']:.0f} s); saved to {rec['path']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    weights, meta = export_generator(args.run, args.out, overwrite=args.overwrite)
    print(f"wrote {weights} and {meta} (load without pickle: ganforge.export.load_exported)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    out = write_report(args.runs, args.out, title=args.title,
                       interpolation=not args.no_interpolation)
    print(f"report written to {out} (self-contained: open it in any browser)")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    res = ablate(args.preset, args.vary, seeds=args.seeds, out=args.out,
                 overrides=list(args.overrides), n=args.n, features=args.features,
                 quiet=args.quiet, workers=args.workers)
    print(res["table"])
    print(f"comparison report: {res['report']}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    if args.dataset in FOLDER_DATASETS:
        dest = locate_folder(args.dataset, args.dir)
        problem = folder_problem(args.dataset, dest)
        if problem:
            raise GanforgeError(problem)
    else:
        dest = Path(args.dir) if args.dir else download_dir(args.dataset)
        download(IDX_DATASETS[args.dataset], dest)  # replaces files that are not the published ones
        problems = verify_present(IDX_DATASETS[args.dataset], dest)
        if problems:
            raise GanforgeError(f"{args.dataset} in {dest} is not whole: {'; '.join(problems)}")
    print(f"{args.dataset} is in {dest}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    source = args.folder
    overrides = [o if o.startswith("data.") or "." in o.split("=")[0] else f"data.{o}"
                 for o in args.overrides]
    other = [o for o in overrides if not o.startswith("data.")]
    if other:
        raise GanforgeError(f"ganforge prepare takes data.* settings only (the decoding), not "
                            f"{', '.join(other)}; e.g. data.resolution=128 data.channels=3")
    named = source in FOLDER_DATASETS
    cfg = validate(apply_overrides(Config(), [
        f"data.name={source if named else 'folder'}", "model.arch=dcgan",
        *([] if named else [f"data.path={source}"]), *overrides]))
    data = resolve_shape(cfg.data)
    t0 = time.perf_counter()
    prep, cached = prepare_folder(folder_path(data), data.resolution, data.channels,
                                  limit=data.limit, max_pixels=data.max_pixels,
                                  progress=not args.quiet)
    m = prep.meta
    classes = m["classes"]
    shown = ", ".join(classes[:8]) + (f", ... ({len(classes)} in all)" if len(classes) > 8 else "")
    print(f"{m['source']}: {m['count']:,} images at {m['resolution']}x{m['resolution']}, "
          f"{m['channels']} channel(s), {len(classes)} class(es): {shown}")
    if m["skipped"]:
        print(f"{m['skipped']} file(s) could not be decoded and were skipped")
    print(f"prepared copy: {prep.path} ({prep.size_bytes / 2**20:,.1f} MiB; "
          + ("already prepared" if cached else f"built in {time.perf_counter() - t0:.1f} s")
          + "); training on this folder with these data.* settings reads it memory-mapped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganforge",
                                description="ganforge: train, sample and evaluate GANs on PyTorch.")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sp = sub.add_parser("presets", help="list the presets and the papers or tutorials they follow")
    sp.add_argument("--keys", action="store_true",
                    help="list every config key instead: type, default, choices and meaning")
    sp.add_argument("--markdown", action="store_true",
                    help="the key reference as Markdown (docs/configuration.md)")
    sp.set_defaults(func=cmd_presets)

    sp = sub.add_parser("train", help="train a preset, with key=value overrides",
                        description="Train a preset. Overrides: key=value after the preset, "
                                    "e.g. train.epochs=1 train.batch_size=128.")
    sp.add_argument("preset", nargs="?")
    sp.add_argument("overrides", nargs="*", metavar="key=value")
    sp.add_argument("--resume", metavar="RUN",
                    help="continue RUN exactly from its latest checkpoint (overrides allowed, "
                         "e.g. train.epochs=40 to extend it)")
    sp.add_argument("--out", help="run directory (default: runs/<preset>, never reused)")
    sp.add_argument("--data-dir", help="where the dataset files are (sets data.path)")
    sp.add_argument("--device", help="cpu, cuda, cuda:N or auto (sets train.device)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("sample", help="draw samples from a run or checkpoint")
    sp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    sp.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sp.add_argument("--out", required=True,
                    help="grid.png, samples.npy (uint8 N,H,W,C) or a folder name for PNGs")
    sp.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same images")
    sp.add_argument("--truncation", type=float, help="truncation trick: redraw |z| > T")
    sp.add_argument("--interpolate", action="store_true",
                    help="one strip per pair of --seeds (grid.png, .npy or a folder)")
    sp.add_argument("--seeds", help="comma list of seeds for --interpolate (default: 4 from --seed)")
    sp.add_argument("--steps", type=int, default=10, help="images per interpolation strip")
    sp.add_argument("--mode", default="slerp", choices=["slerp", "linear"])
    sp.add_argument("--walk", action="store_true", help="a looping latent walk (--out walk.gif/.webp)")
    sp.add_argument("--frames", type=int, default=48, help="frames of the --walk")
    sp.add_argument("--class", dest="class_index", type=int,
                    help="class index (conditional models; default: every class in turn)")
    sp.add_argument("--no-ema", action="store_true",
                    help="sample the trained G instead of its moving average G_ema")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--overwrite", action="store_true")
    sp.set_defaults(func=cmd_sample)

    sp = sub.add_parser("evaluate", help="FID/KID/precision-recall/... of a run or checkpoint")
    sp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    sp.add_argument("--metrics", default="",
                    help="comma list of fid,kid,pr,dc,is,classes for images (default fid; is "
                         "and classes need --features classifier), w2 for 2-D points")
    sp.add_argument("--n", type=int, default=None,
                    help="generated samples (default 10000; 26000 for modes, as PacGAN)")
    sp.add_argument("--n-reference", type=int,
                    help="compare with the first N reference images only (default: all of the "
                         "test split or image folder)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--no-ema", action="store_true",
                    help="evaluate the trained G instead of its moving average G_ema")
    sp.add_argument("--quiet", action="store_true")
    add_feature_flags(sp)
    sp.set_defaults(func=cmd_evaluate)

    add_score_commands(sub)

    sp = sub.add_parser("train-classifier",
                        help="train the MNIST/Fashion-MNIST domain classifier used by --features classifier")
    sp.add_argument("dataset", choices=["mnist", "fashion-mnist"])
    sp.add_argument("--epochs", type=int, default=None)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--data-dir")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_train_classifier)

    sp = sub.add_parser("export", help="export the generator as safetensors + JSON (no pickle)")
    sp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    sp.add_argument("--out", required=True, help="G.safetensors (its config goes to G.json)")
    sp.add_argument("--overwrite", action="store_true")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="a self-contained HTML report of one or several runs")
    sp.add_argument("runs", nargs="+", metavar="RUN")
    sp.add_argument("--out", help="HTML file (default RUN/report.html; required for several runs)")
    sp.add_argument("--title")
    sp.add_argument("--no-interpolation", action="store_true",
                    help="skip the latent interpolation strips (they load the checkpoint)")
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("ablate", help="train variants of a preset under the same budget and compare",
                        description="Train every combination of the --vary values, for each seed, "
                                    "under the same budget; evaluate; write a comparison report.")
    sp.add_argument("preset")
    sp.add_argument("overrides", nargs="*", metavar="key=value",
                    help="applied to every variant (e.g. the budget: train.epochs=2)")
    sp.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                    help="e.g. model.d_activation=relu,leaky_relu (repeatable; none: the preset "
                         "as given, over the seeds)")
    sp.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    sp.add_argument("--out", help="folder for the runs and the report (default runs/ablate-<preset>)")
    sp.add_argument("--n", type=int, default=2000, help="samples per evaluation (default 2000)")
    sp.add_argument("--features", choices=["classifier", "inception"],
                    help="default: classifier for MNIST-like data, inception otherwise")
    sp.add_argument("--workers", type=int, default=0,
                    help="runs trained at once in separate processes, the CPU threads split "
                         "between them (default 0: one per core on a CPU, one on a GPU)")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_ablate)

    sp = sub.add_parser("prepare", help="decode an image folder once into its memory-mapped copy",
                        description="Decode every image of FOLDER (or a .zip, or a named folder "
                                    "dataset such as pokemon) at the data.* settings into the "
                                    "prepared copy that training reads, and print what it holds.")
    sp.add_argument("folder", metavar="FOLDER")
    sp.add_argument("overrides", nargs="*", metavar="data.key=value",
                    help="data settings, e.g. data.resolution=128 data.channels=3")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_prepare)

    add_explore_commands(sub)

    sp = sub.add_parser("download", help="download a named dataset (checksums verified)")
    sp.add_argument("dataset", choices=[*IDX_DATASETS, *FOLDER_DATASETS])
    sp.add_argument("--dir", help="destination (default: the user cache)")
    sp.set_defaults(func=cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may sit before or after options (`train P --out D k=v` or `train P k=v --out D`).
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a
             or args.command not in ("train", "ablate", "prepare")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    for flag in ("out", "resume", "data_dir", "dir", "inception", "init", "latent"):
        if getattr(args, flag, None) == "":
            parser.error(f"--{flag.replace('_', '-')} is empty: give a path or leave the flag out")
    try:
        if getattr(args, "device", None) is not None:
            check_device(args.device)
        return args.func(args)
    except GanforgeError as e:
        if isinstance(e, TrainingInterrupted):
            print(f"ganforge: {e}", file=sys.stderr)
            return 130
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the file system refused: a full disk, a read-only or missing folder
        where = f" {e.filename}" if e.filename else ""
        print(f"ganforge: error: the file system refused{where}: {e.strerror or e}. Check that "
              "the folder exists, is writable and the disk has space, then run the command "
              "again; files already written are left as they were.", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if not is_write_failure(e):
            raise
        print(f"ganforge: error: a file could not be written ({str(e).splitlines()[0]}): the "
              "disk is probably full. Free space and run the command again; files already "
              "written are left as they were.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
