"""Headless Debian Chromium driven by Selenium through the system chromedriver (nothing is
downloaded): shared by the explorer's tests and benchmarks/serve_latency.py."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

AVAILABLE = bool(CHROMIUM and CHROMEDRIVER and HAVE_SELENIUM)
WHY_NOT = ("chromium, chromium-driver and selenium are needed for the browser tests "
           "(make test installs them)")


def chrome(profile_dir, width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver with a fresh profile and no background networking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile_dir}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_for(driver, script: str, timeout: float = 30.0):
    """Wait until the JavaScript expression ``script`` is truthy; return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script(f"return {script};"))


PIXELS_JS = """
const img = document.getElementById(arguments[0]);
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
"""


def pixels(driver, element_id: str = "main") -> list[int]:
    """The RGBA pixels of an <img> as the browser decoded them."""
    return driver.execute_script(PIXELS_JS, element_id)
