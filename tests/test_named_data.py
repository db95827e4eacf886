"""Named folder datasets (the d2l Pokemon sprites): data roots, download, checksum, offline."""

import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.data import named_folders
from ganforge.data.named_folders import FOLDER_DATASETS, FolderSpec, locate_folder
from ganforge.errors import DataError

from .conftest import REPO


def _sprite_zip() -> bytes:
    """A zip laid out like d2l's pokemon.zip: pokemon/<class>/<image>.png."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as zf:
        for c in ("1", "2"):
            for i in range(3):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), np.uint8)).save(png, "PNG")
                zf.writestr(f"pokemon/{c}/{i}.png", png.getvalue())
    return buf.getvalue()


@pytest.fixture
def no_data_root(monkeypatch):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)


def _serve(monkeypatch, payload: bytes | None, sha1: str | None = None):
    """Replace the network: urlopen returns ``payload`` (None: offline); the spec's checksum
    becomes ``sha1`` (default: the payload's own)."""
    calls = []

    def fake_fetch(url, timeout):
        calls.append(url)
        if payload is None:
            raise urllib.error.URLError("Temporary failure in name resolution")
        return payload

    monkeypatch.setattr(named_folders, "_fetch", fake_fetch)
    spec = FOLDER_DATASETS["pokemon"]
    digest = sha1 or (hashlib.sha1(payload).hexdigest() if payload else spec.sha1)
    monkeypatch.setitem(FOLDER_DATASETS, "pokemon",
                        FolderSpec(spec.name, spec.url, digest, spec.source))
    return calls


def test_the_seed_archive_is_named_with_its_checksum():
    spec = FOLDER_DATASETS["pokemon"]
    assert spec.url == "http://d2l-data.s3-accelerate.amazonaws.com/pokemon.zip"
    assert spec.sha1 == "c065c0e2593b8b161a2d7873e42418bf6a21106c"


def test_download_verifies_and_extracts_once(no_data_root, monkeypatch):
    calls = _serve(monkeypatch, _sprite_zip())
    path = locate_folder("pokemon")
    assert path == named_folders.download_dir("pokemon")
    assert sorted(p.name for p in path.iterdir()) == ["1", "2"]
    assert len(list(path.rglob("*.png"))) == 6
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary left"
    assert locate_folder("pokemon") == path and len(calls) == 1, "found in the cache next time"


def test_checksum_mismatch_keeps_nothing(no_data_root, monkeypatch):
    _serve(monkeypatch, _sprite_zip(), sha1="0" * 40)
    with pytest.raises(DataError, match="SHA-1 .* not 0{40}.*nothing was kept"):
        locate_folder("pokemon")
    assert not named_folders.download_dir("pokemon").exists()


def test_offline_message_names_the_file_checksum_and_places(no_data_root, monkeypatch, capsys,
                                                            tmp_path):
    _serve(monkeypatch, None)
    assert main(["train", "pokemon-dcgan", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    spec = FOLDER_DATASETS["pokemon"]
    for part in (spec.url, spec.sha1, "GANFORGE_DATA", "--data-dir", "name resolution"):
        assert part in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_download_off_is_said(no_data_root, monkeypatch):
    calls = _serve(monkeypatch, _sprite_zip())
    with pytest.raises(DataError, match="data.download=false"):
        locate_folder("pokemon", allow_download=False)
    assert not calls


def test_data_root_is_used_before_any_download(monkeypatch, tmp_path):
    root = tmp_path / "root"
    zipfile.ZipFile(io.BytesIO(_sprite_zip())).extractall(root)
    monkeypatch.setenv("GANFORGE_DATA", str(root))
    calls = _serve(monkeypatch, _sprite_zip())
    assert locate_folder("pokemon") == root / "pokemon" and not calls


def test_pokemon_preset_trains_from_any_directory(tmp_path):
    """A user anywhere, data in a root named by GANFORGE_DATA: the preset finds it."""
    root = tmp_path / "root"
    zipfile.ZipFile(io.BytesIO(_sprite_zip())).extractall(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "GANFORGE_DATA": str(root), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO / "src")}
    code = ("from ganforge.cli import main; raise SystemExit(main(['train', 'pokemon-dcgan', "
            "'--out', 'run', '--quiet', 'train.epochs=1', 'train.batch_size=4', "
            "'model.g_width=4', 'model.d_width=4', 'data.resolution=16', 'report.tensorboard=off']))")
    p = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (elsewhere / "run" / "checkpoint.pt").is_file()
    import json

    resolved = json.loads((elsewhere / "run" / "resolved.json").read_text())
    assert resolved["data_path"] == str(root / "pokemon") and resolved["examples"] == 6


def test_no_default_points_outside_the_product():
    """No preset default names a path: data comes from the data roots or a download."""
    from ganforge.presets import PRESETS

    for p in PRESETS.values():
        assert p.build().data.path == "", p.name
    src = (REPO / "src" / "ganforge")
    assert not [f for f in src.rglob("*.py") if "../shared" in f.read_text()]
