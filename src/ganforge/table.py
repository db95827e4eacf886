"""The results of an evaluation as a small text table (``evaluate``, ``fid``)."""

from __future__ import annotations

from typing import Any

from .metrics.registry import display_names


def format_table(res: dict[str, Any]) -> str:
    """The results as a small text table (per-class rows below, when present)."""
    backend = f" ({res['backend']})" if res.get("backend", "torch") != "torch" else ""
    against = f" vs {res['n_reference']} real" if "n_reference" in res else ""
    lines = [f"features: {res['features']}{backend}"
             + (f", {res['n_generated']} generated{against}" if "n_generated" in res else "")]
    for key, label in display_names().items():
        if key in res:
            val = f"{res[key]:.4f}"
            if f"{key}_std" in res:
                val += f" ± {res[f'{key}_std']:.4f}"
            if key == "is" and "is_real" in res:
                val += f"  (real data: {res['is_real']:.3f})"
            if key == "modes":
                val = f"{res['modes']} of {res['n_modes']}  (real data: {res['modes_real']})"
            if key == "modes_kl":
                val += (f"  (real data: {res['modes_kl_real']:.4f}; uniform draws: "
                        f"{res['modes_kl_uniform']:.4f}; classifier test accuracy "
                        f"{100 * res['modes_classifier_accuracy']:.2f}%)")
            lines.append(f"  {label:<24} {val}")
    if "classes" in res:
        cond = "agreement" in res["classes"][0]
        lines.append(f"  {'class':<14} {'share':>7} {'real':>6} {'conf.':>6} {'FID':>8}"
                     + ("  agreement" if cond else ""))
        for r in res["classes"]:
            fid = "   -" if r["fid"] is None else f"{r['fid']:8.3f}"
            conf = "  -" if r["confidence"] is None else f"{r['confidence']:.3f}"
            agree = "" if not cond or r["agreement"] is None else f"  {100 * r['agreement']:8.1f}%"
            lines.append(f"  {r['name'][:14]:<14} {100 * r['share']:6.1f}% {100 * r['real_share']:5.1f}% "
                         f"{conf:>6} {fid:>8}{agree}")
    lines.append(f"  ({res['seconds']:.1f} s)")
    return "\n".join(lines)
