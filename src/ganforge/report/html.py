"""``ganforge report``: one self-contained HTML page per run or per comparison of runs.

Every picture is embedded as a data URI, so the page opens anywhere without network or the run
directory beside it: config, loss and metric curves, sample grids over time with an animated GIF of
the fixed-noise samples, the final grid, per-class tables from ``eval.json``, latent interpolation
strips, and for several runs a side-by-side comparison.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import GanforgeError
from ..generator import interpolation_noise, load_generator, render, strip_labels
from ..io import read_jsonl, write_text
from ..io.lock import lock_for_output
from ..metrics.registry import display_names
from .plots import _pyplot, grid_image, loss_figure, to_uint8

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;
margin-top:2.2rem}table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ddd;
padding:.25rem .6rem;text-align:right}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}
.plot svg{max-width:100%;height:auto;border:1px solid #eee;display:block}.row{display:flex;flex-wrap:wrap;
gap:1rem}.card{flex:1 1 320px}.muted{color:#777;font-size:.9rem}pre{background:#f7f7f7;padding:.6rem;
overflow:auto;max-height:24rem;font-size:.8rem}.timeline img{width:180px}.alarm{color:#a00}.cleared{color:#777}
"""

# Counts the page's images once loaded; headless tests read the result from the DOM.
CHECK_JS = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  if (ok !== imgs.length) { console.error('ganforge report: ' + (imgs.length - ok) + ' images failed'); }
});
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _img(path_or_bytes: Path | bytes, alt: str, mime: str = "image/png", cls: str = "") -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{html.escape(alt)}" src="{_data_uri(data, mime)}">'


def _figure_svg(fig) -> str:
    """A figure as inline SVG with its text kept as text: sharp at any size, and a browser can
    check that no label is cut."""
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _metric_curves(records: list[dict[str, Any]], title: str):
    keys = sorted({k for r in records for k in r
                   if k.startswith("eval_") or k in ("diversity", "augment_p")})
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), dpi=100, squeeze=False)
    for ax, k in zip(axes[0], keys):
        pts = [(r["epoch"], r[k]) for r in records if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
        ax.set_title(k.replace("eval_", ""))
        if k.startswith("eval_") and len(pts) > 1 and min(p[1] for p in pts) > 0:
            ax.set_yscale("log")  # FID falls by orders of magnitude early on
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _cleared(alarm: dict[str, Any], records: list[dict[str, Any]], health: dict[str, Any]
             ) -> str:
    """How an alarm ended, read from the later epochs: '' while it still holds. A mode-collapse
    alarm clears when the diversity is back above ``health.collapse_ratio``, D overpowering when
    an epoch's accuracy of D fell below ``health.d_acc_limit`` (by the monitor's 0.05 margin)."""
    later = [r for r in records if r.get("step", -1) > alarm.get("step", 0)]
    if alarm.get("alarm") == "mode_collapse":
        ratio = float(health.get("collapse_ratio", 0.2))
        back = next((r for r in later if r.get("diversity", 0.0) >= ratio), None)
        if back and all(r.get("diversity", ratio) >= ratio for r in later[later.index(back):]):
            return f"diversity {back['diversity']:.2f} from epoch {back['epoch']} on"
    if alarm.get("alarm") == "d_overpowering":
        limit = float(health.get("d_acc_limit", 0.99)) - 0.05
        back = next((r for r in later if r.get("acc_D", 1.0) < limit), None)
        if back and all(r.get("acc_D", 0.0) < limit for r in later[later.index(back):]):
            return f"D's accuracy {100 * back['acc_D']:.0f}% from epoch {back['epoch']} on"
    return ""


def _gif(frames: list[Path], max_frames: int = 60) -> bytes | None:
    if len(frames) < 2:
        return None
    step = max(1, len(frames) // max_frames)
    imgs = [Image.open(f).convert("RGB") for f in frames[::step]]
    size = imgs[0].size
    imgs = [im if im.size == size else im.resize(size) for im in imgs]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=400, loop=0)
    return buf.getvalue()


def _interpolation_png(run: Path) -> bytes | None:
    try:
        G, cfg, shape, classes = load_generator(run)
    except GanforgeError:
        return None
    if len(shape) != 3:
        return None
    z = interpolation_noise(cfg.model.z_dim, [0, 1, 2, 3, 4], 10, "slerp")
    buf = io.BytesIO()
    y = strip_labels(len(z), 10, classes)  # one class per strip
    grid_image(to_uint8(render(G, z, y=y)), 4, 10).save(buf, format="PNG")
    return buf.getvalue()


def _table(rows: list[list[Any]], header: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v)) if v is not None else "-"

    h = "".join(f"<th>{html.escape(x)}</th>" for x in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _eval_rows(ev: dict[str, Any]) -> list[list[Any]]:
    names = display_names()
    return [[key, label, res[m]] for key, res in ev.items() for m, label in names.items()
            if m in res]


def _read_json(path: Path) -> dict[str, Any]:
    """A run file's JSON object; empty when it is missing or unreadable (a report shows what
    there is)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _run_section(run: Path, label: str, interpolation: bool) -> tuple[str, dict[str, Any]]:
    cfg = _read_json(run / "config.json")
    summary = _read_json(run / "summary.json")
    ev = _read_json(run / "eval.json")
    resolved = _read_json(run / "resolved.json")
    records = read_jsonl(run / "metrics.jsonl")
    alarms = read_jsonl(run / "alarms.jsonl")
    grids = sorted((run / "samples").glob("epoch_*.png")) if (run / "samples").is_dir() else []
    parts = [f"<h2 id='{html.escape(label)}'>{html.escape(label)}</h2>",
             f"<p class='muted'>{html.escape(cfg.get('description', ''))} — {html.escape(str(run))}</p>"]
    if summary:
        keys = ["epochs", "steps", "images_seen", "train_seconds", "stopped_by", "final_loss_D",
                "final_loss_G", "device", "rollbacks"]
        rows = [[k, summary[k]] for k in keys if k in summary]
        t = cfg.get("train", {})
        if t.get("ema_kimg"):
            rows.append(["samples from", f"G_ema (half-life {t['ema_kimg']:g}k images)"])
        if t.get("augment"):
            rows.append(["DiffAugment", t["augment"]])
        src = resolved.get("init_from")
        if isinstance(src, dict):
            seen = f", {src['images_seen']:,} images seen" if src.get("images_seen") else ""
            rows.append(["started from", f"{src.get('path')} (sha256 {str(src.get('sha256'))[:12]}; "
                         f"trained on {src.get('data_path') or src.get('data')}{seen})"])
            if t.get("freeze_d"):
                rows.append(["Freeze-D", f"D's first {t['freeze_d']} block(s) fixed"])
        if cfg.get("model", {}).get("conditional"):
            classes = resolved.get("num_classes") or cfg["model"].get("num_classes")
            rows.append(["class-conditional", f"{classes} classes, one per grid column"])
        parts.append(_table(rows, ["summary", "value"]))
        if "gaussian" in summary:
            g = summary["gaussian"]
            parts.append(_table([["fitted mean", str([round(v, 3) for v in g["fitted_mean"]])],
                                 ["true mean b", str(g["true_mean"])],
                                 ["mean error", g["mean_error"]],
                                 ["covariance error (rel.)", g["cov_rel_error"]]],
                                ["2-D Gaussian", ""]))
    if alarms:
        items = []
        for a in alarms:
            cleared = _cleared(a, records, cfg.get("health", {}))
            cls, note = ("cleared", f" <em>(cleared: {html.escape(cleared)})</em>") if cleared \
                else ("alarm", "")
            items.append(f"<li class='{cls}'>[{html.escape(a['alarm'])}] step {a['step']}: "
                         f"{html.escape(a['message'])}{note}</li>")
        parts.append("<h3>Alarms</h3><ul>" + "".join(items) + "</ul>")
    figs = []
    losses = [r for r in records if "loss_D" in r and "loss_G" in r]
    if losses:
        svg = _figure_svg(loss_figure(losses, title=label))
        figs.append(f"<div class='card'><h3>Losses</h3><div class='plot'>{svg}</div></div>")
    curves = _metric_curves(records, label)
    if curves is not None:
        figs.append(f"<div class='card'><h3>Metrics</h3><div class='plot'>"
                    f"{_figure_svg(curves)}</div></div>")
    parts.append("<div class='row'>" + "".join(figs) + "</div>")
    if grids:
        parts.append("<div class='row'>")
        epoch = html.escape(grids[-1].stem[6:].lstrip("0"))
        parts.append(f"<div class='card'><h3>Final samples (epoch {epoch})</h3>"
                     f"{_img(grids[-1], 'final samples')}</div>")
        gif = _gif(grids)
        if gif:
            parts.append(f"<div class='card'><h3>Fixed noise across training</h3>"
                         f"{_img(gif, 'samples across training', 'image/gif')}</div>")
        parts.append("</div><h3>Over time</h3><div class='row timeline'>")
        step = max(1, len(grids) // 8)
        for g in grids[::step]:
            parts.append(f"<div>{_img(g, g.stem)}<div class='muted'>{html.escape(g.stem)}</div></div>")
        parts.append("</div>")
    if interpolation:
        interp = _interpolation_png(run)
        if interp:
            parts.append("<h3>Latent interpolation (slerp, seeds 0→1→2→3→4)</h3>"
                         + _img(interp, "latent interpolation"))
    if ev:
        parts.append("<h3>Evaluation</h3>" + _table(_eval_rows(ev), ["evaluation", "metric", "value"]))
        for key, res in ev.items():
            if "classes" in res:
                cond = "agreement" in res["classes"][0]
                rows = [[r["name"], 100 * r["share"], 100 * r["real_share"], r["confidence"], r["fid"]]
                        + ([None if r["agreement"] is None else 100 * r["agreement"]] if cond else [])
                        for r in res["classes"]]
                parts.append(f"<h3>Per class ({html.escape(key)})</h3>"
                             + _table(rows, ["class", "predicted as it %", "real %", "confidence",
                                             "per-class FID"]
                                      + (["recognised as asked %"] if cond else [])))
    parts.append(f"<details><summary>Config</summary><pre>{html.escape(json.dumps(cfg, indent=2))}"
                 "</pre></details>")
    return "\n".join(parts), {"label": label, "summary": summary, "eval": ev,
                              "final": grids[-1] if grids else None}


def write_report(runs: list[str | os.PathLike], out: str | os.PathLike | None = None,
                 title: str | None = None, interpolation: bool = True,
                 labels: list[str] | None = None, intro_html: str = "") -> Path:
    """Write the report; default ``<run>/report.html`` for one run, required ``out`` for several."""
    paths = [Path(r) for r in runs]
    for p in paths:
        if not (p / "config.json").is_file():
            raise GanforgeError(f"{p} is not a ganforge run directory (no config.json)")
    if out is None:
        if len(paths) > 1:
            raise GanforgeError("several runs: give --out report.html for the comparison page")
        out = paths[0] / "report.html"
    out = Path(out)
    labels = labels or [p.name for p in paths]
    sections, infos = zip(*[_run_section(p, lab, interpolation) for p, lab in zip(paths, labels)])
    head = []
    if len(paths) > 1:
        rows = []
        for info in infos:
            s = info["summary"]
            fids = {k: v.get("fid") for k, v in info["eval"].items() if "fid" in v}
            rows.append([info["label"], s.get("epochs"), s.get("images_seen"), s.get("train_seconds"),
                         s.get("final_loss_D"), s.get("final_loss_G"),
                         "; ".join(f"{k}: {v:.3f}" for k, v in fids.items()) or None])
        head.append("<h2>Comparison</h2>" + _table(rows, ["run", "epochs", "images", "seconds",
                                                           "loss_D", "loss_G", "FID"]))
        head.append("<div class='row'>" + "".join(
            f"<div class='card'><h3>{html.escape(i['label'])}</h3>{_img(i['final'], i['label'])}</div>"
            for i in infos if i["final"] is not None) + "</div>")
    title = title or ("ganforge report: " + ", ".join(labels))
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>" + intro_html + "\n".join(head) + "\n".join(sections)
            + f"<p class='muted'>written by ganforge</p><script>{CHECK_JS}</script></body></html>")
    with lock_for_output(out):
        return write_text(out, page)
