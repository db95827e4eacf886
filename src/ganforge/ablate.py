"""``ganforge ablate``: the same preset and budget with one thing changed, over several seeds.

Answers questions like d2l's exercise "what happens if we use ReLU instead of leaky ReLU in D?":
every combination of the ``--vary`` values is trained for each seed, evaluated the same way, and
summarised as mean ± std with a side-by-side report. ``workers`` runs train at once in separate
processes, the CPU threads split between them; by default as many as the CPU has cores (one on a
GPU). At the same ``train.threads``, results equal a sequential ablation's run for run: each
run's seed fixes it, not the order. Ablation runs draw their sample grid after the last epoch only (unless
``report.sample_every`` is given): for a small model, pictures every epoch cost more than the
training.
"""

from __future__ import annotations

import html
import itertools
import multiprocessing
import os
import re
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .config import Config, ConfigError
from .data import describe
from .errors import GanforgeError, require_range
from .io import write_json
from .evaluate import evaluate
from .metrics.registry import default_metric, headline
from .presets import from_preset
from .report.html import write_report
from .runtime import resolve_device
from .training import train


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_vary(vary: list[str]) -> list[tuple[str, list[str]]]:
    axes = []
    for item in vary:
        if "=" not in item:
            raise ConfigError(f"--vary {item!r} must look like key=value1,value2")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if len(vals) < 1:
            raise ConfigError(f"--vary {item!r} names no values")
        axes.append((key.strip(), vals))
    return axes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def _train_and_score(cfg: Config, run_dir: Path, n: int, features: str,
                     progress: bool) -> dict[str, Any]:
    """One ablation run: train, then the metric registry's default for the data (FID for
    images, the exact W2 for the 2-D toy) of the result."""
    res = train(cfg, run_dir, quiet=True, progress=progress)
    metric = default_metric(describe(cfg.data).kind)
    ev = evaluate(run_dir, metrics=(metric.name,), n=n, features=features, progress=progress)
    key = headline(metric)
    return {"seed": cfg.train.seed, "run": str(run_dir), key: ev[key],
            "final_loss_D": res.summary["final_loss_D"],
            "final_loss_G": res.summary["final_loss_G"], "alarms": res.summary["alarms"]}


def _run_parallel(jobs: list[tuple[str, Config, Path]], n: int, features: str, workers: int,
                  quiet: bool) -> dict[tuple[str, int], dict[str, Any]]:
    done = {}
    # spawn, not fork: a forked child inherits the parent's OpenMP thread pool state.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(_train_and_score, cfg, run_dir, n, features, False): (label, cfg)
                   for label, cfg, run_dir in jobs}
        bar = tqdm(total=len(jobs), desc=f"ablation ({workers} at a time)", unit="run",
                   disable=quiet)
        try:
            for fut in as_completed(futures):
                label, cfg = futures[fut]
                done[(label, cfg.train.seed)] = fut.result()  # a failed run raises here
                bar.update()
                if not quiet:
                    bar.write(f"done: {label}, seed {cfg.train.seed}")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # runs not started yet are dropped
            raise
        finally:
            bar.close()
    return done


def ablate(preset: str, vary: list[str], seeds: int = 3, out: str | None = None,
           overrides: list[str] | None = None, n: int = 2000, features: str | None = None,
           quiet: bool = False, workers: int = 0) -> dict[str, Any]:
    """Train and evaluate every variant for each seed; ``workers`` = 0 picks one process per
    core (one on a GPU)."""
    overrides = list(overrides or [])
    require_range("--seeds", seeds, 1, 1000)
    require_range("--workers", workers, 0, 256, "parallel training processes; 0 = one per core")
    require_range("--n", n, 2, 10 ** 7, "samples per evaluation")
    if not any(o.startswith("report.sample_every=") for o in overrides):
        overrides += ["report.sample_every=0", "report.sample_minutes=0"]  # the last grid only
    axes = parse_vary(vary)
    variants = [list(zip([k for k, _ in axes], combo))
                for combo in itertools.product(*[v for _, v in axes])]
    if workers == 0:
        on_gpu = resolve_device(from_preset(preset, overrides).train.device).type == "cuda"
        workers = 1 if on_gpu else _cores()
    workers = min(workers, len(variants) * seeds)
    if workers > 1 and not any(o.startswith("train.threads=") for o in overrides):
        # Split the cores between the runs unless the user chose a thread count.
        overrides += [f"train.threads={max(1, _cores() // workers)}"]
    # Build every config first: a typo fails before hours of training.
    plan = []
    for variant in variants:
        label = ", ".join(f"{k}={v}" for k, v in variant) or preset
        for seed in range(seeds):
            cfg = from_preset(preset, overrides + [f"{k}={v}" for k, v in variant]
                              + [f"train.seed={seed}"])
            plan.append((label, seed, cfg))
    root = Path(out) if out else Path("runs") / f"ablate-{preset}"
    if root.exists() and any(root.iterdir()):
        raise GanforgeError(f"{root} already exists; choose another --out")
    cfg0 = plan[0][2]
    if features is None:
        features = "classifier" if describe(cfg0.data).classifier else "inception"
    jobs = [(label, cfg, root / _slug(label) / f"seed{seed}") for label, seed, cfg in plan]
    if workers > 1:
        done = _run_parallel(jobs, n, features, workers, quiet)
    else:
        done = {}
        for i, (label, cfg, run_dir) in enumerate(jobs, 1):
            if not quiet:
                print(f"[{i}/{len(jobs)}] {label}, seed {cfg.train.seed} -> {run_dir}", flush=True)
            done[(label, cfg.train.seed)] = _train_and_score(cfg, run_dir, n, features,
                                                             progress=not quiet)
    results: dict[str, list[dict[str, Any]]] = {}
    for label, seed, _ in plan:  # the plan's order, whatever order the runs finished in
        results.setdefault(label, []).append(done[(label, seed)])
    scored = default_metric(describe(jobs[0][1].data).kind)
    metric = headline(scored)  # the result key every run was scored by
    name = dict(scored.results)[metric]
    name = name if scored.exact else f"{name} ({features}, n={n})"
    rows = []
    for label, runs in results.items():
        vals = [r[metric] for r in runs]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        alarms = sorted({a for r in runs for a in r["alarms"]})
        rows.append((label, statistics.mean(vals), std, vals, alarms))
    table = [f"| variant | {name} mean ± std | per seed | alarms |", "|---|---:|---|---|"]
    for label, mean, std, vals, alarms in rows:
        table.append(f"| {label} | {mean:.3f} ± {std:.3f} | {', '.join(f'{v:.3f}' for v in vals)} "
                     f"| {', '.join(alarms) or '-'} |")
    summary = {"preset": preset, "vary": vary, "seeds": seeds, "overrides": overrides,
               "workers": workers,
               "metric": metric, "features": features, "n": n, "results": results}
    write_json(root / "ablation.json", summary)
    intro = ("<h2>Ablation</h2><table><tr><th>variant</th><th>" + html.escape(name)
             + " mean ± std</th><th>per seed</th><th>alarms</th></tr>"
             + "".join(f"<tr><td>{html.escape(lab)}</td><td>{m:.3f} ± {s:.3f}</td>"
                       f"<td>{', '.join(f'{v:.3f}' for v in vals)}</td>"
                       f"<td>{html.escape(', '.join(al) or '-')}</td></tr>"
                       for lab, m, s, vals, al in rows)
             + f"</table><p class='muted'>preset {html.escape(preset)}, "
               f"{seeds} seed(s), overrides: {html.escape(' '.join(overrides) or 'none')}; "
               "the runs below are seed 0 of each variant.</p>")
    seed0 = [results[label][0]["run"] for label in results]
    report = write_report(seed0, root / "report.html", title=f"ablation of {preset}",
                          labels=list(results), intro_html=intro)
    return {"table": "\n".join(table), "report": str(report), "summary": summary}
