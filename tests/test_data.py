import gzip
import urllib.request
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import GAUSSIAN_A, GAUSSIAN_B, _fit_idx, gaussian2d, load_dataset
from ganforge.data import idx as idxmod
from ganforge.data.idx import IDX_DATASETS, load_idx_dataset, parse_idx, read_idx, write_idx
from ganforge.data.images import decode_image, load_image_folder
from ganforge.errors import DataError

from .conftest import SHARED_DATA, needs_fashion, needs_mnist, needs_pokemon


# --- the seed's 2-D Gaussian -------------------------------------------------------------------
def test_gaussian2d_is_xa_plus_b_seeded():
    data = gaussian2d(1000, seed=3)
    X = torch.randn(1000, 2, generator=torch.Generator().manual_seed(3))
    assert data.shape == (1000, 2)
    torch.testing.assert_close(data, X @ GAUSSIAN_A + GAUSSIAN_B)
    assert torch.equal(gaussian2d(1000, seed=3), data)
    assert not torch.equal(gaussian2d(1000, seed=4), data)


def test_gaussian2d_moments():
    big = gaussian2d(200_000, seed=0).double()
    torch.testing.assert_close(big.mean(0), GAUSSIAN_B.double(), atol=0.02, rtol=0)
    true_cov = (GAUSSIAN_A.T @ GAUSSIAN_A).double()  # [[1.01, 1.95], [1.95, 4.25]]
    torch.testing.assert_close(torch.cov(big.T), true_cov, atol=0.05, rtol=0)


# --- IDX ---------------------------------------------------------------------------------------
def test_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("x.idx", "x.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)
    raw = open(tmp_path / "x.idx", "rb").read()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (2).to_bytes(4, "big")


def test_idx_wrong_magic_and_truncation(tmp_path):
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"\x89PNG....", "f")
    write_idx(tmp_path / "ok.idx", np.zeros((4, 5), np.uint8))
    raw = (tmp_path / "ok.idx").read_bytes()
    with pytest.raises(DataError, match="truncated"):
        parse_idx(raw[:-3], "f")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(tmp_path / "bad.gz")


def test_idx_header_sizes_do_not_overflow(tmp_path):
    # four dimensions of 2^32 - 1: their product overflows int64 (np.prod would wrap to a
    # small number); the check must still see that the file is far too short
    raw = bytes([0, 0, 8, 4]) + b"\xff\xff\xff\xff" * 4 + b"\x00" * 16
    with pytest.raises(DataError, match="truncated or padded"):
        parse_idx(raw, "f")
    wrap = bytes([0, 0, 8, 4]) + (2 ** 16).to_bytes(4, "big") * 4  # 2^64 wraps to 0 in int64
    with pytest.raises(DataError, match="truncated or padded"):
        parse_idx(wrap, "f")


def test_labels_outside_the_classes_are_refused_before_training(idx_dir, tmp_path, capsys):
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", (np.arange(64) % 12).astype(np.uint8))
    with pytest.raises(DataError, match="labels from 0 to 11.*10 classes"):
        load_idx_dataset("mnist", "train", str(idx_dir.parent))
    assert main(["train", "mnist-best", "--data-dir", str(idx_dir.parent), "--out",
                 str(tmp_path / "r"), "--quiet", "train.epochs=1", "eval.every=0"]) == 2
    assert "labels from 0 to 11" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_lookup_order_explicit_then_env_then_cache(idx_dir, tmp_path, monkeypatch):
    # an explicit directory wins (with or without the dataset's name appended)
    images, labels, classes = load_idx_dataset("mnist", "train", str(idx_dir.parent))
    assert images.shape == (64, 28, 28) and labels[:3].tolist() == [0, 1, 2]
    assert classes[0] == "0"
    # then $GANFORGE_DATA/<name>
    monkeypatch.setenv("GANFORGE_DATA", str(idx_dir.parent))
    images, _, _ = load_idx_dataset("mnist", "test")
    assert images.shape == (16, 28, 28)
    # then the user cache
    monkeypatch.delenv("GANFORGE_DATA")
    cache = idxmod.user_cache_dir() / "data"
    cache.mkdir(parents=True)
    (cache / "mnist").symlink_to(idx_dir)
    assert load_idx_dataset("mnist", "test")[0].shape == (16, 28, 28)


def test_explicit_dir_without_files_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not hold the mnist train files"):
        load_idx_dataset("mnist", "train", str(tmp_path))


def test_offline_error_names_files_and_places(monkeypatch):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:
        load_idx_dataset("mnist", "train")
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "GANFORGE_DATA" in msg and "no network" in msg
    assert not idxmod.download_dir("mnist").exists(), "no empty folder left in the cache"
    with pytest.raises(DataError, match="downloading is off"):
        load_idx_dataset("mnist", "train", allow_download=False)


def test_download_verifies_checksum(idx_dir, monkeypatch):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    payloads = {f.name: f.read_bytes() for f in idx_dir.iterdir()}
    spec = IDX_DATASETS["mnist"]
    fake_sums = {n: __import__("hashlib").sha256(gzip.decompress(b)).hexdigest()
                 for n, b in payloads.items()}
    monkeypatch.setitem(IDX_DATASETS, "mnist", spec.__class__(**{**spec.__dict__,
                                                                 "sha256": fake_sums}))

    class Resp:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    seen = []

    def serve(url, timeout=None):
        seen.append(url)
        return Resp(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    images, labels, _ = load_idx_dataset("mnist", "train")
    assert images.shape == (64, 28, 28) and seen[0].startswith("https://")
    # a corrupted payload is rejected by the checksum, from every mirror
    payloads = {n: gzip.compress(b"\0\0\x08\x01\0\0\0\x01x") for n in payloads}
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: Resp(payloads[url.rsplit("/", 1)[1]]))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_idx_dataset("mnist", "test")


def test_fit_idx_pads_28_to_32_with_black():
    x = np.full((2, 28, 28), 200, np.uint8)
    out = _fit_idx(x, 32, 1)
    assert out.shape == (2, 1, 32, 32) and out.dtype == torch.uint8
    assert out[0, 0, :2].eq(0).all() and out[0, 0, 2:30, 2:30].eq(200).all()
    assert _fit_idx(x, 28, 3).shape == (2, 3, 28, 28)
    assert _fit_idx(x, 64, 1).shape == (2, 1, 64, 64)


@needs_mnist
def test_real_mnist_from_the_shared_data_root():
    ds = load_dataset(DataConfig(name="mnist", resolution=32, channels=1, limit=1000))
    assert ds.data.shape == (1000, 1, 32, 32) and ds.labels.shape == (1000,)
    assert ds.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical first labels
    x = ds.batch(torch.arange(8))
    assert x.min() == -1 and x.max() == 1


@needs_fashion
def test_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    images, labels, classes = load_idx_dataset("fashion-mnist", "test", allow_download=False)
    assert images.shape == (10000, 28, 28) and classes[9] == "Ankle boot"
    assert labels[:3].tolist() == [9, 2, 1]


# --- image folders -----------------------------------------------------------------------------
def _folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    rgba.save(root / "a" / "rgba.png")
    p = Image.new("P", (8, 8), 1)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.info["transparency"] = 0
    p.save(root / "a" / "pal.png", transparency=0)  # index 1 (green) opaque everywhere
    arr16 = np.zeros((8, 8), np.uint16)
    arr16[:, 4:] = 65535
    arr16[:, :4] = 32896  # 128 * 257
    i16 = Image.frombytes("I;16", (8, 8), arr16.astype("<u2").tobytes())
    i16.save(root / "b" / "deep.png")
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, 4:12] = 255  # the central square is white, the sides black
    Image.fromarray(wide).save(root / "b" / "wide.jpg", quality=100)
    (root / "b" / "broken.png").write_bytes(b"not a png at all")
    Image.new("RGB", (8, 8), (10, 20, 30)).save(root / "b" / "plain.bmp")
    return root


def test_image_folder_modes_and_rules(tmp_path):
    root = _folder(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 of 6"):
        images, labels, classes = load_image_folder(root, 8, 3)
    assert classes == ["a", "b"] and images.shape == (5, 3, 8, 8) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1, 1, 1]
    pal, rgba, deep, bmp, wide = images  # sorted: a/pal, a/rgba, b/deep, b/plain, b/wide
    assert (rgba[:, 1, 1] == 255).all(), "transparent pixels composite on white"
    assert rgba[:, 0, 0].tolist() == [0, 0, 255]
    assert pal[:, 3, 3].tolist() == [0, 255, 0]
    assert bmp[:, 0, 0].tolist() == [10, 20, 30]
    assert deep[0, 0, 0] == 128 and deep[0, 0, 7] == 255, "16-bit scaled, not clipped"
    assert wide.min() >= 250, "non-square: the center square is kept"


def test_image_folder_grayscale_and_resize(tmp_path):
    root = _folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images, _, _ = load_image_folder(root, 4, 1)
    assert images.shape == (5, 1, 4, 4)


def test_shape_read_from_the_images(tmp_path):
    """resolution 0 and channels 0: the median shorter side as a power of two, and one channel
    only when every image is grayscale (16-bit and grey+alpha included)."""
    from ganforge.data import resolve_shape

    gray, mixed = tmp_path / "gray", tmp_path / "mixed"
    gray.mkdir(), mixed.mkdir()
    Image.new("L", (150, 90), 10).save(gray / "a.png")
    Image.new("LA", (100, 200), (10, 255)).save(gray / "b.png")
    Image.new("I;16", (100, 100)).save(gray / "c.png")
    for i, mode in enumerate(["L", "L", "RGB"]):
        Image.new(mode, (40, 40)).save(mixed / f"{i}.png")
    shape = resolve_shape(DataConfig(name="folder", path=str(gray), resolution=0, channels=0))
    assert (shape.resolution, shape.channels) == (128, 1)  # median side 100: nearest is 128
    shape = resolve_shape(DataConfig(name="folder", path=str(mixed), resolution=0, channels=0))
    assert (shape.resolution, shape.channels) == (32, 3)
    shape = resolve_shape(DataConfig(name="folder", path=str(gray), resolution=16, channels=3))
    assert (shape.resolution, shape.channels) == (16, 3)  # given, not read


def test_flat_folder_and_limit(tmp_path):
    for i in range(3):
        Image.new("L", (5, 5), i * 100).save(tmp_path / f"{i}.png")
    images, labels, classes = load_image_folder(tmp_path, 5, 1, limit=2)
    assert images.shape == (2, 1, 5, 5) and len(classes) == 1 and images[1, 0, 0, 0] == 100


def test_empty_missing_and_non_image_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", 8)
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(tmp_path, 8)
    (tmp_path / "fake.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="could be decoded"):
        load_image_folder(tmp_path, 8)


def test_decode_gif_and_webp_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (6, 6), (0, 255, 0)).save(tmp_path / "b.webp", lossless=True)
    assert decode_image(tmp_path / "a.gif", 6, 3)[:, 2, 2].tolist() == [255, 0, 0]
    assert decode_image(tmp_path / "b.webp", 6, 3)[:, 2, 2].tolist() == [0, 255, 0]


@needs_pokemon
def test_pokemon_sprites_decode_once():
    ds = load_dataset(DataConfig(name="folder", path=str(SHARED_DATA / "pokemon"), limit=200))
    assert ds.data.shape == (200, 3, 128, 128) and ds.data.dtype == torch.uint8  # 96 px: nearest 128
    assert len(ds.class_names) == 650


def test_a_new_run_takes_the_nearest_power_of_two_capped_on_a_cpu(tmp_path, capsys):
    from ganforge.data import folder_resolution
    from ganforge.presets import from_preset
    from ganforge.training import train

    for side, cpu, gpu in ((56, 64, 64), (96, 128, 128), (40, 32, 32), (300, 128, 256),
                           (700, 128, 256), (12, 32, 32)):
        folder = tmp_path / f"s{side}"
        folder.mkdir()
        for i in range(3):
            Image.new("RGB", (side + 12 * i, side), (i, 0, 0)).save(folder / f"{i}.png")
        cfg = DataConfig(name="folder", path=str(folder))
        assert folder_resolution(cfg, "cpu")[0] == cpu and folder_resolution(cfg, "cuda")[0] == gpu
    assert "at most 128 on a CPU (set data.resolution=256" in folder_resolution(
        DataConfig(name="folder", path=str(tmp_path / "s300")), "cpu")[1]
    run = train(from_preset("folder", [f"data.path={tmp_path / 's56'}", "train.epochs=1",
                                       "model.g_width=4", "model.d_width=4", "train.batch_size=3",
                                       "report.tensorboard=off", "train.device=cpu"]),
                tmp_path / "run", progress=False).run_dir
    assert "data.resolution=64: the images' median shorter side is 56 px" in capsys.readouterr().out
    import json
    assert json.loads((run / "config.json").read_text())["data"]["resolution"] == 64
