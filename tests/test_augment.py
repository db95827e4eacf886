"""DiffAugment: what each op does, per-sample randomness, differentiability, policy parsing."""

import pytest
import torch

from ganforge.augment import color, cutout, diff_augment, parse_policy, translation


def test_translation_shifts_whole_images_and_pads_with_zeros():
    torch.manual_seed(0)
    x = torch.arange(1, 65, dtype=torch.float32).view(1, 1, 8, 8).repeat(64, 1, 1, 1)
    out = translation(x)  # up to 1 pixel (1/8 of 8) each way
    seen = set()
    for img in out[:, 0]:
        # find the shift: the original value 1 sits at (dy, dx) when it is inside
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(img, _shift(x[0, 0], dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9, "every shift in [-1, 1]^2 occurs over 64 samples"


def _shift(img, dy, dx):
    out = torch.zeros_like(img)
    h, w = img.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_cutout_zeroes_a_square_of_half_the_size():
    torch.manual_seed(1)
    out = cutout(torch.ones(200, 3, 8, 8))
    zeros = (out == 0).all(1)  # same hole in every channel
    assert ((out == 0) | (out == 1)).all()
    counts = zeros.flatten(1).sum(1)
    assert counts.max() == 16 and counts.min() >= 4  # 4x4, clipped at the border
    centred = [z for z, c in zip(zeros, counts) if c == 16]
    rows = centred[0].any(1).nonzero().flatten()
    assert len(rows) == 4 and rows.diff().eq(1).all()  # a contiguous square


def test_color_changes_each_sample_differently_and_keeps_shape():
    torch.manual_seed(2)
    x = torch.rand(16, 3, 4, 4) * 2 - 1
    out = color(x)
    assert out.shape == x.shape
    shifts = (out - x).mean((1, 2, 3))
    assert shifts.std() > 0.05


def test_augment_is_differentiable():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    diff_augment(x, "translation,cutout,color").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policy_parsing():
    assert parse_policy("cutout, color") == ["color", "cutout"]
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        parse_policy("translation,flip")
