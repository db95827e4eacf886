"""How direct the explorer feels: from a slider's input event to the new image's load, in a real
browser (Debian's headless Chromium, driven by Selenium), over 100 moves, plus what a burst of
100 moves costs (requests made, most in flight at once).

    python benchmarks/serve_latency.py --runs runs/pokemon-best runs/fashion-best
    python benchmarks/serve_latency.py --presets pokemon-best folder-stylegan2 mnist-mlp

``--presets`` builds each preset's networks by training one tiny epoch (latency depends on the
architecture and resolution, not on how far a run trained). ``--screenshot PNG`` saves the page
of the first run after the moves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' browser helper

from tests import browser  # noqa: E402
from ganforge.presets import from_preset  # noqa: E402
from ganforge.serve.app import Server  # noqa: E402
from ganforge.serve.explorer import Explorer  # noqa: E402
from ganforge.training import train  # noqa: E402

TINY = {"pokemon-best": ["data.limit=64"], "folder-stylegan2": ["data.name=pokemon",
                                                                "data.resolution=64",
                                                                "data.channels=3",
                                                                "data.limit=64"],
        "folder": ["data.name=pokemon", "data.resolution=64", "data.channels=3", "data.limit=64"]}


def tiny_run(preset: str, root: Path) -> Path:
    extra = TINY.get(preset, ["data.limit=256"])
    cfg = from_preset(preset, extra + ["train.epochs=1", "train.max_minutes=0",
                                       "report.sample_every=0", "report.sample_minutes=0",
                                       "eval.every=0"])
    out = root / preset
    train(cfg, out, quiet=True)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(run: Path, moves: int, profile: Path, screenshot: Path | None) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    explorer = Explorer(run)
    # the server's own share: rendering and encoding one image
    state = explorer.state({"seed": "0", "d0": "1"})
    explorer.image_png(state)
    t = []
    for i in range(50):
        s = explorer.state({"seed": "0", "d0": str(round(-2 + 0.1 * (i % 40), 2))})
        t0 = time.perf_counter()
        explorer.image_png(s)
        t.append(1000 * (time.perf_counter() - t0))
    server = Server(explorer, port=0).start()
    driver = browser.chrome(profile)
    try:
        driver.get(server.url)
        browser.wait_for(driver, "document.getElementById('main').dataset.query")
        slider = driver.find_element(By.ID, "d0")
        slider.click()
        for _ in range(5):  # warm up the path
            slider.send_keys(Keys.ARROW_RIGHT)
            time.sleep(0.2)
        done = driver.execute_script("return gf.timings.length")
        for i in range(moves):
            key = Keys.ARROW_RIGHT if (i // 20) % 2 == 0 else Keys.ARROW_LEFT
            slider.send_keys(key)
            browser.wait_for(driver, f"gf.timings.length > {done}", 30)
            done = driver.execute_script("return gf.timings.length")
        lat = [r["ms"] for r in driver.execute_script("return gf.timings")[-moves:]]
        # a burst: every move at once; a newer value replaces a pending one
        before = driver.execute_script("return gf.requests")
        for i in range(moves):
            slider.send_keys(Keys.ARROW_LEFT if (i // 20) % 2 == 0 else Keys.ARROW_RIGHT)
        time.sleep(1.0)
        browser.wait_for(driver, "gf.inFlight === 0", 30)
        burst = driver.execute_script("return gf.requests") - before
        most = driver.execute_script("return gf.maxInFlight")
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
        server.stop()
    info = explorer.info()
    return {"run": run.name, "arch": info["arch"], "res": "x".join(map(str, info["shape"][1:]))
            or "2-D", "median": statistics.median(lat), "p95": pct(lat, 95),
            "server": statistics.median(t), "burst": burst, "in_flight": most}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=[])
    ap.add_argument("--presets", nargs="*", default=[])
    ap.add_argument("--moves", type=int, default=100)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    if not browser.AVAILABLE:
        raise SystemExit(browser.WHY_NOT)
    tmp = Path(tempfile.mkdtemp(prefix="serve-latency-"))
    runs = [Path(r) for r in args.runs] + [tiny_run(p, tmp) for p in args.presets]
    rows = [measure(r, args.moves, tmp / f"profile-{i}", args.screenshot if i == 0 else None)
            for i, r in enumerate(runs)]
    print(f"\n{args.moves} slider moves, input event -> image loaded (headless Chromium, same machine)")
    print(f"| run | arch | resolution | median ms | p95 ms | server render ms | burst of "
          f"{args.moves}: requests | most in flight |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['arch']} | {r['res']} | {r['median']:.1f} | {r['p95']:.1f} | "
              f"{r['server']:.1f} | {r['burst']} | {r['in_flight']} |")


if __name__ == "__main__":
    main()
