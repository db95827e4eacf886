"""TensorBoard logging, the HTML report (rendered in headless Chromium), latent tools, ablate."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from tests import browser
from ganforge.presets import from_preset
from ganforge.errors import GanforgeError
from ganforge.sample import interpolation_noise, slerp, truncated_noise, walk_noise
from ganforge.training import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(24):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(root / c / f"{i}.png")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = from_preset("pokemon-dcgan", [f"data.path={root}", "data.resolution=8", "model.g_width=4",
                                        "model.d_width=4", "train.epochs=3", "train.batch_size=16",
                                        "report.tensorboard=on"])
    train(cfg, out, quiet=True)
    return out


def test_tensorboard_logs_scalars_and_images(image_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(image_run / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/D", "loss/G", "lr/G", "speed/examples_per_sec"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("loss/D")] == [48, 96, 144]  # images seen
    assert "samples" in tags["images"]


def test_tensorboard_on_without_the_package(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tb(name, *a, **k):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("no tensorboard")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tb)
    from ganforge.report.tensorboard import TensorBoardLogger

    with pytest.raises(GanforgeError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path, "on")
    assert not TensorBoardLogger(tmp_path, "auto").enabled


def _chromium(args, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
           "--v=0", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_is_self_contained(image_run, tmp_path):
    assert main(["report", str(image_run), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/") >= 6  # loss curve, final grid, GIF, timeline, interpolation
    assert "data:image/gif" in page and "Latent interpolation" in page
    assert 'src="http' not in page and "<link" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
def test_report_renders_in_headless_chromium(image_run, tmp_path):
    report = tmp_path / "r.html"
    assert main(["report", str(image_run), str(image_run), "--out", str(report)]) == 0
    url = report.resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    import re

    m = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert m, "the page's load handler ran"
    ok, total = int(m.group(1)), int(m.group(2))
    assert total >= 10 and ok == total, f"{ok}/{total} images loaded"
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
    shot = tmp_path / "report.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,1800", url], tmp_path)
    assert res.returncode == 0 and shot.is_file()
    img = Image.open(shot)
    assert img.size == (1280, 1800)
    assert np.asarray(img.convert("L")).std() > 5, "the screenshot shows content"


CLIPPED_JS = """
const out = [];
for (const svg of document.querySelectorAll('.plot svg')) {
  const box = svg.getBoundingClientRect();
  if (box.width < 0.6 * svg.width.baseVal.value) out.push('a plot shrunk below 60%');
  for (const t of svg.querySelectorAll('text')) {
    const r = t.getBoundingClientRect();
    if (!t.textContent.trim()) continue;
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
        r.bottom > box.bottom + 1) out.push(t.textContent);
  }
}
return {plots: document.querySelectorAll('.plot svg').length,
        texts: document.querySelectorAll('.plot svg text').length, clipped: out};
"""


@pytest.mark.skipif(not browser.AVAILABLE, reason=browser.WHY_NOT)
@pytest.mark.parametrize("width", [1280, 700])
def test_no_text_of_the_reports_plots_is_cut_in_the_browser(image_run, tmp_path, width):
    report = tmp_path / "r.html"
    assert main(["report", str(image_run), "--out", str(report), "--no-interpolation"]) == 0
    driver = browser.chrome(tmp_path / "profile", width=width, height=1200)
    try:
        driver.get(report.resolve().as_uri())
        res = driver.execute_script(CLIPPED_JS)
    finally:
        driver.quit()
    assert res["plots"] >= 2 and res["texts"] > 10  # loss and metric curves, text as text
    assert not res["clipped"], res["clipped"]


def test_plot_labels_lie_inside_their_figures():
    from ganforge.report.html import _metric_curves
    from ganforge.report.plots import _pyplot, loss_figure, texts_outside

    records = [{"epoch": e, "step": 10 * e, "loss_D": 0.5 / e, "loss_G": 3.0 + e,
                "diversity": 0.1 * e, "eval_fid_classifier": 300.0 / e} for e in range(1, 40)]
    for fig in (loss_figure(records, "a long title: mnist-mlp, 300 epochs"),
                _metric_curves(records, "mnist-mlp")):
        assert not texts_outside(fig)
        _pyplot().close(fig)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_ylabel("a label placed outside on purpose", labelpad=200)
    assert texts_outside(fig)  # the check sees a cut label
    plt.close(fig)


def test_the_report_says_when_an_alarm_cleared():
    from ganforge.report.html import _cleared

    records = [{"epoch": e, "step": 235 * e, "diversity": d, "acc_D": a}
               for e, d, a in ((1, 0.01, 0.99), (2, 0.03, 0.99), (3, 0.4, 0.7), (4, 0.9, 0.6))]
    health = {"collapse_ratio": 0.2, "d_acc_limit": 0.99}
    assert "epoch 3" in _cleared({"alarm": "mode_collapse", "step": 470}, records, health)
    assert "epoch 3" in _cleared({"alarm": "d_overpowering", "step": 200}, records, health)
    relapse = records + [{"epoch": 5, "step": 1175, "diversity": 0.05, "acc_D": 0.6}]
    assert _cleared({"alarm": "mode_collapse", "step": 470}, relapse, health) == ""


def test_report_needs_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a ganforge run directory" in capsys.readouterr().err


def test_latent_tools():
    a, b = torch.randn(1, 16), torch.randn(1, 16)
    t = torch.tensor([0.0, 1.0])
    ends = slerp(a.expand(2, -1), b.expand(2, -1), t)
    torch.testing.assert_close(ends[0], a[0])
    torch.testing.assert_close(ends[1], b[0])
    mid = slerp(a, b, torch.tensor([0.5]))
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 0.35 * a.norm()  # stays on the shell
    z = interpolation_noise(16, [0, 1, 2], 5, "linear")
    assert z.shape == (10, 16)
    torch.testing.assert_close(z[0], truncated_noise(1, 16, 0)[0])
    torch.testing.assert_close(z[4], truncated_noise(1, 16, 1)[0])
    assert truncated_noise(500, 16, 0, truncation=0.5).abs().max() <= 0.5
    assert walk_noise(16, 0, 24, keypoints=4).shape == (24, 16)


def test_sample_interpolate_walk_truncation(image_run, tmp_path, capsys):
    assert main(["sample", str(image_run), "--interpolate", "--seeds", "0,1,2", "--steps", "6",
                 "--out", str(tmp_path / "i.png")]) == 0
    w, h = Image.open(tmp_path / "i.png").size
    assert w > 2 * h  # 2 strips of 6
    assert main(["sample", str(image_run), "--walk", "--frames", "12",
                 "--out", str(tmp_path / "w.gif")]) == 0
    gif = Image.open(tmp_path / "w.gif")
    assert gif.n_frames == 12
    assert main(["sample", str(image_run), "--truncation", "0.7", "--n", "4",
                 "--out", str(tmp_path / "t.npy")]) == 0
    assert np.load(tmp_path / "t.npy").shape == (4, 8, 8, 3)
    assert main(["sample", str(image_run), "--class", "1", "--out", str(tmp_path / "c.png")]) == 2
    assert "class-conditional" in capsys.readouterr().err


def test_ablate_gaussian(tmp_path, capsys):
    rc = main(["ablate", "gaussian2d", "--vary", "model.init=d2l,torch", "--seeds", "2",
               "--out", str(tmp_path / "abl"), "train.epochs=3", "--quiet"])
    assert rc == 0
    # the preset draws every epoch; an ablation run only after the last
    grids = sorted(p.name for p in (tmp_path / "abl" / "model.init=torch" / "seed1" / "samples").iterdir())
    assert grids == ["epoch_0003.png"]
    summary = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert set(summary["results"]) == {"model.init=d2l", "model.init=torch"}
    assert all(len(v) == 2 for v in summary["results"].values())
    assert summary["metric"] == "w2"
    out = capsys.readouterr().out
    assert "model.init=torch" in out and "±" in out
    page = (tmp_path / "abl" / "report.html").read_text()
    assert "Ablation" in page and "model.init=d2l" in page


def test_ablate_with_workers_equals_the_sequential_ablation(tmp_path):
    args = ["ablate", "gaussian2d", "--vary", "model.init=d2l,torch", "--seeds", "2",
            "train.epochs=1", "train.threads=1", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "seq"), "--workers", "1"]) == 0
    assert main(args + ["--out", str(tmp_path / "par"), "--workers", "2"]) == 0
    seq = json.loads((tmp_path / "seq" / "ablation.json").read_text())["results"]
    par = json.loads((tmp_path / "par" / "ablation.json").read_text())["results"]
    assert list(par) == list(seq)  # the plan's order, not the finishing order
    for label in seq:
        assert [r["seed"] for r in par[label]] == [0, 1]
        assert [r["w2"] for r in par[label]] == pytest.approx([r["w2"] for r in seq[label]],
                                                              rel=1e-6)
    assert (tmp_path / "par" / "model.init=torch" / "seed1" / "checkpoint.pt").is_file()


def test_ablate_without_vary_studies_the_seeds(tmp_path, capsys):
    assert main(["ablate", "gaussian2d", "--seeds", "2", "--workers", "1", "train.epochs=1",
                 "--out", str(tmp_path / "s"), "--quiet"]) == 0
    runs = json.loads((tmp_path / "s" / "ablation.json").read_text())["results"]["gaussian2d"]
    assert [r["seed"] for r in runs] == [0, 1] and runs[0]["w2"] != runs[1]["w2"]
    assert "| gaussian2d |" in capsys.readouterr().out


def test_ablate_rejects_a_bad_key_before_training(tmp_path, capsys):
    assert main(["ablate", "gaussian2d", "--vary", "model.d_activaton=relu", "--out",
                 str(tmp_path / "a")]) == 2
    assert "model.d_activation" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
def test_report_escapes_every_text_it_embeds(image_run, tmp_path):
    import re

    run = tmp_path / 'run<i id="inj-run">'  # the run's name is the report's label
    shutil.copytree(image_run, run)
    last = sorted((run / "samples").glob("epoch_*.png"))[-1]
    shutil.copy(last, run / "samples" / 'epoch_9999<img src=x id="inj-file">.png')
    cfg = json.loads((run / "config.json").read_text())
    cfg["description"] = '<script id="inj-script">document.title="owned"</script>'
    cfg["data"]["path"] = '<b id="inj-config">'
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "alarms.jsonl").write_text(json.dumps(
        {"alarm": '<u id="inj-alarm">', "step": 1, "message": '<svg id="inj-msg" onload=x()>'})
        + "\n")
    report = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(report), "--title", '<h6 id="inj-title">']) == 0
    dom = _chromium(["--dump-dom", report.resolve().as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>" in dom.stdout and "inj-file" in dom.stdout, "the planted texts are on the page"
    injected = re.findall(r'<[a-z0-9]+[^<>]*id="inj-[a-z]+"', dom.stdout)
    assert not injected, injected
    assert "<title>owned</title>" not in dom.stdout
