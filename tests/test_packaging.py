"""The package installs beside the PyTorch it finds: it asks for a range of torch versions, not
one, and pip resolves it (and its extras) against the installed build without replacing it."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def test_torch_is_a_range_that_the_installed_build_satisfies():
    reqs = [Requirement(r) for r in metadata.requires("ganforge") or []]
    torch_req = next(r for r in reqs if r.name == "torch")
    assert not any(s.operator == "==" for s in torch_req.specifier), "torch must not be pinned"
    assert torch_req.specifier.contains(Version(torch.__version__.split("+")[0]))
    # the pin of the README's CPU setup lives in a constraints file, not in the package
    pin = (REPO / "constraints-cpu.txt").read_text()
    assert re.search(r"^torch==\d", pin, re.M)


def test_pip_keeps_the_installed_torch():
    import setuptools

    if Version(setuptools.__version__) < Version("61"):
        pytest.skip(f"setuptools {setuptools.__version__} cannot read pyproject metadata offline")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", f"{REPO}[serve,fast]"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    would = [line for line in out.stdout.splitlines() if line.startswith("Would install")]
    assert would and "ganforge" in would[0] and "torch" not in would[0], out.stdout[-2000:]
