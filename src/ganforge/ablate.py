"""``ganforge ablate``: the same preset and budget with one thing changed, over several seeds.

Answers questions like d2l's exercise "what happens if we use ReLU instead of leaky ReLU in D?":
every combination of the ``--vary`` values is trained for each seed, evaluated the same way, and
summarised as mean ± std with a side-by-side report.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import statistics
from pathlib import Path
from typing import Any

from .config import ConfigError, from_preset
from .data.idx import IDX_DATASETS
from .errors import GanforgeError


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


def ablate(preset: str, vary: list[str], seeds: int = 3, out: str | None = None,
           overrides: list[str] | None = None, n: int = 2000, features: str | None = None,
           quiet: bool = False) -> dict[str, Any]:
    from .evaluate import evaluate
    from .report.html import write_report
    from .training import train

    overrides = overrides or []
    if seeds < 1:
        raise GanforgeError(f"--seeds must be >= 1, got {seeds}")
    axes = parse_vary(vary)
    variants = [list(zip([k for k, _ in axes], combo))
                for combo in itertools.product(*[v for _, v in axes])]
    # Build every config first: a typo fails before hours of training.
    plan = []
    for variant in variants:
        label = ", ".join(f"{k}={v}" for k, v in variant)
        for seed in range(seeds):
            cfg = from_preset(preset, overrides + [f"{k}={v}" for k, v in variant]
                              + [f"train.seed={seed}"])
            plan.append((label, seed, cfg))
    root = Path(out) if out else Path("runs") / f"ablate-{preset}"
    if root.exists() and any(root.iterdir()):
        raise GanforgeError(f"{root} already exists; choose another --out")
    cfg0 = plan[0][2]
    if features is None:
        features = "classifier" if cfg0.data.name in IDX_DATASETS else "inception"
    results: dict[str, list[dict[str, Any]]] = {}
    for i, (label, seed, cfg) in enumerate(plan, 1):
        run_dir = root / _slug(label) / f"seed{seed}"
        if not quiet:
            print(f"[{i}/{len(plan)}] {label}, seed {seed} -> {run_dir}", flush=True)
        res = train(cfg, run_dir, quiet=True, progress=not quiet)
        ev = evaluate(run_dir, metrics=("fid",), n=n, features=features, progress=not quiet)
        metric = "w2" if "w2" in ev else "fid"
        results.setdefault(label, []).append(
            {"seed": seed, "run": str(run_dir), metric: ev[metric],
             "final_loss_D": res.summary["final_loss_D"], "final_loss_G": res.summary["final_loss_G"],
             "alarms": res.summary["alarms"]})
    metric = "w2" if "w2" in next(iter(results.values()))[0] else "fid"
    name = "2-Wasserstein" if metric == "w2" else f"FID ({features}, n={n})"
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
               "metric": metric, "features": features, "n": n, "results": results}
    (root / "ablation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
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
