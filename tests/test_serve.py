"""The explorer (ganforge serve), SeFa, projection and editing: values by hand, files that open,
the HTTP routes' refusals, and the page driven in headless Chromium."""

import http.client
import io
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from tests import browser
from ganforge.cli import main
from ganforge.editing import Editor, EditState, directions, sefa
from ganforge.generator import load_generator
from ganforge.inversion import project, psnr, ssim
from ganforge.presets import from_preset
from ganforge.training import train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _folder(root, n=24, side=16, seed=0):
    rng = np.random.default_rng(seed)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            # smooth blobs, so a small G learns something image-like in a few epochs
            y, x = np.mgrid[:side, :side] / side
            cx, cy = rng.uniform(0.2, 0.8, 2)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) * 20)
            rgb = (blob[..., None] * rng.uniform(80, 255, 3)).astype(np.uint8)
            Image.fromarray(rgb).save(root / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs of every kind the explorer shows: DCGAN (class-conditional), StyleGAN2-style,
    FastGAN-style, R3GAN-style, the MLP and the 2-D toy."""
    data = _folder(tmp_path_factory.mktemp("blobs"))
    base = tmp_path_factory.mktemp("serve-runs")
    common = [f"data.path={data}", "data.resolution=16", "train.batch_size=16", "train.threads=1"]
    specs = {
        "dcgan": ("folder", ["model.g_width=8", "model.d_width=8", "model.conditional=true",
                             "train.epochs=4", "train.max_minutes=0"]),
        "stylegan2": ("folder-stylegan2", ["model.g_width=2", "model.d_width=2", "model.w_dim=32",
                                           "train.epochs=1", "train.max_minutes=0"]),
        "fastgan": ("folder", ["model.arch=fastgan", "model.g_width=4", "model.d_width=4",
                               "train.augment=", "train.epochs=1", "train.max_minutes=0"]),
        "r3gan": ("folder-r3gan", ["model.g_width=16", "model.d_width=16", "train.epochs=1",
                                   "train.max_minutes=0"]),
    }
    out = {}
    for name, (preset, extra) in specs.items():
        cfg = from_preset(preset, common + extra + ["report.sample_every=0",
                                                     "report.sample_minutes=0"])
        train(cfg, base / name, quiet=True)
        out[name] = base / name
    cfg = from_preset("gaussian2d", ["train.epochs=2"])
    train(cfg, base / "toy", quiet=True)
    out["toy"] = base / "toy"
    return out


# ----------------------------------------------------------------------------- by hand


def test_sefa_on_a_small_matrix_by_hand():
    # rows normalised: [1, 0], [1, 1]/sqrt2, [0, 1] -> AᵀA = [[1.5, .5], [.5, 1.5]]:
    # eigenvalues 2 and 1, eigenvectors (1, 1)/sqrt2 and (1, -1)/sqrt2
    A = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    vecs, shares = sefa(A, 2)
    r = 1 / math.sqrt(2)
    assert torch.allclose(vecs, torch.tensor([[r, r], [r, -r]]), atol=1e-6)
    assert torch.allclose(shares, torch.tensor([2 / 3, 1 / 3]), atol=1e-6)


def test_psnr_and_ssim_by_hand():
    a = torch.zeros(1, 1, 16, 16)
    b = a + 0.2  # [0, 1] scale: a difference of 0.1 everywhere -> MSE 0.01 -> 20 dB
    assert float(psnr(a, b)) == pytest.approx(20.0, abs=1e-4)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
    # constant images x = 0.5, y = 0.6: only the luminance term is left
    c1 = 0.01 ** 2
    want = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
    assert float(ssim(a, b)) == pytest.approx(want, abs=1e-5)


def test_every_architecture_says_its_edit_space_and_first_layer(runs):
    for name, space in (("dcgan", "z"), ("stylegan2", "w"), ("fastgan", "z"), ("r3gan", "z"),
                        ("toy", "z")):
        G = load_generator(runs[name]).G
        assert G.latent_space == space
        d = directions(G, k=4, num_classes=2 if name == "dcgan" else 0)
        assert d.vectors.shape[0] == min(4, d.vectors.shape[1])
        assert torch.allclose(d.vectors.norm(dim=1), torch.ones(len(d.vectors)), atol=1e-5)
        assert float(d.shares.sum()) <= 1.0 + 1e-6 and bool((d.shares[:-1] >= d.shares[1:]).all())


def test_the_tutorials_mlp_is_edited_in_z():
    from ganforge.models import MLPGenerator

    torch.manual_seed(0)
    G = MLPGenerator(100, (1, 28, 28)).eval()
    ed = Editor(G, 0, k=3)
    assert ed.space == "z" and ed.dirs.vectors.shape == (3, 100)
    a, b = ed.image(EditState(seed=1)), ed.image(EditState(seed=1, strengths={0: 3.0}))
    assert a.shape == (1, 1, 28, 28) and (a - b).abs().max() > 1e-3


def test_a_direction_changes_the_image_and_mixing_changes_only_its_layers(runs):
    G = load_generator(runs["stylegan2"]).G
    ed = Editor(G, 0, k=4)
    base = ed.image(EditState(seed=3))
    moved = ed.image(EditState(seed=3, strengths={0: 4.0}))
    assert (base - moved).abs().mean() > 1e-3
    lat = ed.latent(EditState(seed=3, mix="fine", mix_seed=9))
    plain = ed.seed_latent(3, EditState())
    fine = list(G.style_groups()["fine"])
    coarse = list(G.style_groups()["coarse"])
    assert torch.equal(lat[0, coarse], plain.expand(len(coarse), -1))
    assert not torch.equal(lat[0, fine], plain.expand(len(fine), -1))


def test_projection_recovers_the_generators_own_sample(runs):
    for name in ("dcgan", "stylegan2"):
        loaded = load_generator(runs[name])
        ed = Editor(loaded.G, loaded.num_classes)
        target = ed.image(EditState(seed=11, class_index=1 if loaded.num_classes else None))
        res = project(ed, target, steps=150, seed=0)
        assert float(res.psnr[0]) >= 30.0, (name, float(res.psnr[0]))
        if loaded.num_classes:  # the search also chose a class
            assert res.classes is not None and 0 <= int(res.classes[0]) < loaded.num_classes


def test_the_perceptual_distances_are_zero_at_the_target_and_grow_away_from_it(runs):
    from ganforge.generator import load_discriminator
    from ganforge.inversion import Distance
    from ganforge.metrics.features import FeatureError, find_inception_file

    t = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    kinds = {"pixels": {}, "d": {"D": load_discriminator(runs["fastgan"])}}
    try:
        find_inception_file()
        kinds["inception"] = {}
    except FeatureError:
        pass  # the wheel is not installed here; make setup installs it
    for kind, kw in kinds.items():
        dist = Distance(kind, t, **kw)
        assert dist(t).abs().max() < 1e-5, kind
        away = dist(t.flip(0))  # each target against the other image
        assert (away > 1e-3).all(), kind
        rows = torch.tensor([1, 1])  # both rows measured against target 1
        assert float(dist(t[[1, 1]], rows).abs().max()) < 1e-5, kind


# ----------------------------------------------------------------------------- commands


def test_project_and_edit_commands_write_files_that_open(runs, tmp_path, capsys):
    run = runs["stylegan2"]
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "imgs")]) == 0
    imgs = sorted((tmp_path / "imgs").glob("*.png"))
    out = tmp_path / "proj"
    assert main(["project", str(run), *map(str, imgs), "--out", str(out), "--steps", "20",
                 "--wplus", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "PSNR" in text and "SSIM" in text
    summary = json.loads((out / "projection.json").read_text())
    assert [r["image"] for r in summary["images"]] == [p.name for p in imgs]
    lat = np.load(out / "000000_latent.npy")
    G = load_generator(run).G
    assert lat.shape == (1, G.num_ws, G.w_dim)
    for f in ("000000_projected.png", "000000_compare.png", "000000_progress.gif"):
        Image.open(out / f).verify()
    assert Image.open(out / "000000_progress.gif").n_frames > 2
    # start again from the latent; edit it from the command line
    assert main(["project", str(run), str(imgs[0]), "--out", str(tmp_path / "again"),
                 "--steps", "5", "--init", str(out / "000000_latent.npy"), "--quiet"]) == 0
    assert main(["edit", str(run), "--latent", str(out / "000000_latent.npy"), "--direction", "1",
                 "--strength", "2", "--strip", "3", "--out", str(tmp_path / "e.png")]) == 0
    assert Image.open(tmp_path / "e.png").size[0] > Image.open(tmp_path / "e.png").size[1]
    assert np.load(tmp_path / "e.npy").shape == (3, G.num_ws, G.w_dim)


def test_project_and_edit_refuse_bad_input(runs, tmp_path, capsys):
    run = str(runs["dcgan"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["project", run, str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not an image" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written
    assert main(["project", run, str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 2
    assert main(["edit", run, "--direction", "300", "--out", str(tmp_path / "e.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 7), np.float32))
    assert main(["edit", run, "--latent", str(wrong), "--out", str(tmp_path / "e.png")]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main(["edit", run, "--class", "5", "--out", str(tmp_path / "e.png")]) == 2


# ----------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def servers(runs):
    from ganforge.serve.app import Server
    from ganforge.serve.explorer import Explorer

    started = {name: Server(Explorer(path, project_steps=40), port=0).start()
               for name, path in runs.items()}
    yield started
    for s in started.values():
        s.stop()


def _get(url, data=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_routes_answer_and_refuse_with_messages(servers):
    url = servers["dcgan"].url
    status, body = _get(url + "api/info")
    info = json.loads(body)
    assert status == 200 and info["classes"] == 2 and info["space"] == "z"
    status, png = _get(url + "api/image.png?seed=4&class=1&d0=2")
    assert status == 200 and Image.open(io.BytesIO(png)).size == (16, 16)
    for query, words in (("class=7", "out of range"), ("seed=x", "whole number"),
                         ("d99=1", "does not exist"), ("trunc=-1", "trunc"),
                         ("mix=coarse&mix_seed=1", "style-based"), ("latent=nope", "not known")):
        status, body = _get(url + "api/image.png?" + query)
        assert status == 400 and words in json.loads(body)["error"], query
    status, body = _get(url + "api/project", data=b"<html>hello</html>", method="POST")
    assert status == 400 and "not an image" in json.loads(body)["error"]
    # a body over 16 MiB is refused from its declared length, before it is read
    conn = http.client.HTTPConnection("127.0.0.1", servers["dcgan"].port, timeout=30)
    conn.putrequest("POST", "/api/project")
    conn.putheader("Content-Length", str(17 * 2 ** 20))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "MiB" in json.loads(resp.read())["error"]
    conn.close()
    huge = io.BytesIO()
    Image.new("L", (8000, 6000)).save(huge, format="PNG")
    status, body = _get(url + "api/project", data=huge.getvalue(), method="POST")
    assert status == 400 and "too large" in json.loads(body)["error"]
    assert _get(url + "api/../../etc/passwd")[0] == 404
    assert _get(url + "static/page.html")[0] == 404
    # downloads name their files; after all that, it still serves
    with urllib.request.urlopen(url + "api/image.png?seed=1&class=0&download=1", timeout=60) as r:
        assert "ganforge-image.png" in r.headers["Content-Disposition"]
        Image.open(io.BytesIO(r.read())).verify()
    with urllib.request.urlopen(url + "api/latent.npy?seed=1&class=0", timeout=60) as r:
        assert "ganforge-latent.npy" in r.headers["Content-Disposition"]
        assert np.load(io.BytesIO(r.read())).shape == (1, info["dim"])


def test_latents_round_trip_and_the_toy_shows_ds_surface(servers, runs):
    url = servers["stylegan2"].url
    status, npy = _get(url + "api/latent.npy?seed=5&d1=1.5")
    lat = np.load(io.BytesIO(npy))
    status, body = _get(url + "api/latent", data=npy, method="POST")
    lid = json.loads(body)["latent"]
    a = _get(url + "api/image.png?seed=5&d1=1.5")[1]
    b = _get(url + f"api/image.png?latent={lid}")[1]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b))))
    assert lat.dtype == np.float32 and lat.shape[-1] == 32
    status, png = _get(servers["toy"].url + "api/image.png?seed=0")
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert status == 200 and img.shape[0] > 200
    reddish = ((img[..., 0] - img[..., 2]) > 60).mean()
    bluish = ((img[..., 2] - img[..., 0]) > 60).mean()
    assert reddish + bluish > 0.05  # the heat map of D's output is drawn behind the points


def test_serve_refuses_a_run_without_checkpoint_and_a_taken_port(tmp_path, servers, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["serve", str(tmp_path / "empty"), "--port", "0"]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "empty"), "--port", "-3"]) == 2
    toy = servers["toy"]
    assert main(["serve", str(toy.explorer_path), "--port", str(toy.port)]) == 2
    assert "already in use" in capsys.readouterr().err
    assert toy.thread.is_alive() and _get(toy.url + "api/info")[0] == 200


def test_serve_command_prints_its_url_and_warns_off_loopback(runs, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", str(runs["toy"]),
                             "--port", "0", "--host", "0.0.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert _get(f"http://127.0.0.1:{port}/api/info")[0] == 200
    finally:
        proc.terminate()
        err = proc.communicate(timeout=20)[1]
    assert "warning" in err and "0.0.0.0" in err


# ----------------------------------------------------------------------------- in the browser

needs_browser = pytest.mark.skipif(not browser.AVAILABLE, reason=browser.WHY_NOT)


@pytest.fixture
def driver(tmp_path):
    d = browser.chrome(tmp_path / "profile")
    yield d
    d.quit()


def _shown(driver, fragment):
    """Wait until the large image shows a state whose query holds ``fragment``."""
    return browser.wait_for(driver, f"(document.getElementById('main').dataset.query || '')"
                                    f".includes({json.dumps(fragment)})")


@needs_browser
def test_the_page_moves_a_slider_picks_a_class_and_projects_an_upload(servers, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver.get(servers["dcgan"].url)
    _shown(driver, "seed=0")
    before = browser.pixels(driver)
    slider = driver.find_element(By.ID, "d0")
    slider.click()  # the middle: 0
    for _ in range(30):
        slider.send_keys(Keys.ARROW_RIGHT)  # real input events, 0.1 each
    _shown(driver, "d0=3")
    moved = browser.pixels(driver)
    assert moved != before
    assert "d0=3" in driver.execute_script("return gf.timings.at(-1).q")
    # requests never pile up: one in flight at a time however fast the slider moves
    assert driver.execute_script("return gf.maxInFlight") == 1
    Select(driver.find_element(By.ID, "class")).select_by_value("1")
    _shown(driver, "class=1")
    assert browser.pixels(driver) != moved
    # the permalink restores the state
    link = driver.find_element(By.ID, "permalink").get_attribute("href")
    assert "d0=3" in link and "class=1" in link
    driver.get(link)
    _shown(driver, "d0=3")
    assert driver.find_element(By.ID, "class").get_attribute("value") == "1"
    # an uploaded image is projected, and the sliders then edit the projection
    target = tmp_path / "target.png"
    Image.open(io.BytesIO(_get(servers["dcgan"].url + "api/image.png?seed=21&class=0")[1])).save(target)
    driver.find_element(By.ID, "upload").send_keys(str(target))
    lid = browser.wait_for(driver, "document.getElementById('project-status').dataset.latent", 120)
    _shown(driver, f"latent={lid}")
    assert "PSNR" in driver.find_element(By.ID, "project-status").text
    projected = browser.pixels(driver)
    slider = driver.find_element(By.ID, "d1")
    slider.click()
    for _ in range(20):
        slider.send_keys(Keys.ARROW_LEFT)
    _shown(driver, "d1=-2")
    assert browser.pixels(driver) != projected and f"latent={lid}" in driver.execute_script(
        "return gf.timings.at(-1).q")
    shot = tmp_path / "explorer.png"
    driver.save_screenshot(str(shot))
    assert np.asarray(Image.open(shot).convert("L")).std() > 5


@needs_browser
def test_the_page_for_a_style_based_g_and_for_the_toy(servers, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(servers["stylegan2"].url)
    _shown(driver, "seed=0")
    assert driver.find_element(By.ID, "mix-box").is_displayed()
    before = browser.pixels(driver)
    Select(driver.find_element(By.ID, "mix")).select_by_value("coarse")
    _shown(driver, "mix=coarse")
    assert browser.pixels(driver) != before
    assert "ψ" in driver.find_element(By.ID, "trunc-name").text
    driver.get(servers["toy"].url)
    _shown(driver, "seed=0")
    assert not driver.find_element(By.ID, "grid-box").is_displayed()
    assert driver.execute_script("return document.getElementById('main').naturalWidth") > 200
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


@needs_browser
def test_reload_picks_up_a_newer_checkpoint(runs, tmp_path, driver):
    import shutil

    from ganforge.serve.app import Server
    from ganforge.serve.explorer import Explorer

    run = tmp_path / "copy"
    shutil.copytree(runs["fastgan"], run)
    server = Server(Explorer(run), port=0).start()
    try:
        driver.get(server.url)
        _shown(driver, "seed=0")
        before = browser.pixels(driver)
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        for key in ("G", "G_ema"):
            state[key] = {k: (v.neg() if v.is_floating_point() and v.dim() == 4 else v)
                          for k, v in state[key].items()}
            # a one-epoch run's images can be near flat grey, where the sign change alone
            # moves no pixel: a brighter output layer makes the new checkpoint visible
            state[key]["to_rgb.bias"] = state[key]["to_rgb.bias"] + 0.5
        state["step"] += 100
        time.sleep(0.05)
        torch.save(state, run / "checkpoint.pt")
        driver.find_element("id", "reload").click()
        browser.wait_for(driver, "document.getElementById('meta').textContent.includes('step "
                         f"{state['step']}')")
        deadline = time.time() + 30
        while browser.pixels(driver) == before and time.time() < deadline:
            time.sleep(0.1)
        assert browser.pixels(driver) != before
    finally:
        server.stop()
