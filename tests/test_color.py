"""Colour: BT.601 YCbCr as MATLAB (known values, hand formula, round trips), sRGB and BT.709 transfer curves."""

import numpy as np
import pytest
import torch

from lab import color


def _hand_y(rgb255: np.ndarray) -> np.ndarray:
    """MATLAB's documented formula, R, G, B in 0..255 -> Y in 0..255."""
    r, g, b = rgb255[..., 0], rgb255[..., 1], rgb255[..., 2]
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def test_white_black_gray_known_values():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    ycc_w, ycc_b = color.rgb_to_ycbcr(white), color.rgb_to_ycbcr(black)
    assert torch.allclose(ycc_w[:, 0], torch.tensor(235 / 255), atol=1e-6)
    assert torch.allclose(ycc_b[:, 0], torch.tensor(16 / 255), atol=1e-6)
    for ycc in (ycc_w, ycc_b):  # neutral colours have no chroma
        assert torch.allclose(ycc[:, 1:], torch.tensor(128 / 255), atol=1e-6)
    assert np.allclose(color.rgb_to_y(np.full((1, 1, 3), 255, np.uint8)), 235.0)
    assert np.allclose(color.rgb_to_y(np.ones((1, 1, 3))), 235 / 255)


def test_y_matches_hand_formula_tensor_and_array():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expect = _hand_y(img.astype(np.float64))
    assert np.allclose(color.rgb_to_y(img), expect, atol=1e-10)  # uint8 -> 0..255 floats, unrounded
    assert np.allclose(color.rgb_to_y(img / 255.0) * 255, expect, atol=1e-10)
    t = torch.from_numpy(img.transpose(2, 0, 1)[None] / 255.0)
    y = color.rgb_to_y(t)
    assert y.shape == (1, 1, 9, 7)
    assert y.dtype == torch.float64
    assert np.allclose(y[0, 0].numpy() * 255, expect, atol=1e-10)
    assert torch.allclose(y, color.rgb_to_ycbcr(t)[:, :1])


def test_cbcr_match_matlab_matrix():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.float64)
    ycc = color.rgb_to_ycbcr(rgb / 255) * 255
    # pure primaries pick one column of MATLAB's matrix
    assert np.allclose(ycc[0, :, 1], 128 + np.array([-37.797, -74.203, 112.0]))
    assert np.allclose(ycc[0, :, 2], 128 + np.array([112.0, -93.786, -18.214]))


def test_round_trips():
    x = torch.rand(2, 3, 8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(x)), x, atol=1e-12)
    x32 = x.float()
    assert torch.allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(x32)), x32, atol=1e-5)
    arr = x[0].numpy().transpose(1, 2, 0)
    assert np.allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(arr)), arr, atol=1e-12)


def test_uint8_arrays_round_like_matlab():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    ycc = color.rgb_to_ycbcr(img)
    assert ycc.dtype == np.uint8
    exact = color.rgb_to_ycbcr(img / 255.0) * 255
    assert np.array_equal(ycc, np.floor(exact + 0.5).astype(np.uint8))
    back = color.ycbcr_to_rgb(ycc)
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - img).max() <= 2


def test_float32_dtype_kept():
    arr = np.random.default_rng(2).random((4, 4, 3)).astype(np.float32)
    assert color.rgb_to_ycbcr(arr).dtype == np.float32
    assert color.rgb_to_y(arr).dtype == np.float32


@pytest.mark.parametrize("bad", [torch.rand(1, 4, 2, 2), torch.rand(2, 2), np.zeros((2, 2, 4))])
def test_wrong_channels_raise(bad):
    with pytest.raises(ValueError, match="3"):
        color.rgb_to_y(bad)


def test_srgb_curve_points_and_round_trip():
    enc = torch.tensor([0.0, 0.04045, 0.5, 1.0], dtype=torch.float64)
    lin = color.srgb_to_linear(enc)
    # IEC 61966-2-1: the linear toe ends at 0.04045 <-> 0.0031308; mid grey 0.5 encodes 21.4 % light
    assert torch.allclose(lin, torch.tensor([0.0, 0.04045 / 12.92, 0.214041, 1.0], dtype=torch.float64), atol=1e-6)
    assert abs(lin[1].item() - 0.0031308) < 1e-6
    assert abs(color.linear_to_srgb(torch.tensor(0.18, dtype=torch.float64)).item() - 0.461356) < 1e-5
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(color.linear_to_srgb(color.srgb_to_linear(x)), x, atol=1e-12)
    assert torch.allclose(color.srgb_to_linear(color.linear_to_srgb(x)), x, atol=1e-12)
    assert np.allclose(color.srgb_to_linear(x.numpy()), color.srgb_to_linear(x).numpy())
    assert bool((color.srgb_to_linear(x).diff() > 0).all())  # monotone, no jump at the threshold


def test_bt709_curve_points_and_round_trip():
    lin = torch.tensor([0.0, 0.01, 1.0], dtype=torch.float64)
    v = color.linear_to_bt709(lin)
    assert torch.allclose(v, torch.tensor([0.0, 0.045, 1.0], dtype=torch.float64), atol=1e-9)  # 4.5 L near black
    mid = color.linear_to_bt709(torch.tensor(0.18, dtype=torch.float64)).item()
    assert abs(mid - (1.099 * 0.18 ** 0.45 - 0.099)) < 1e-3  # the standard's rounded constants
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(color.bt709_to_linear(color.linear_to_bt709(x)), x, atol=1e-12)
    assert bool((color.linear_to_bt709(x).diff() > 0).all())


@pytest.mark.parametrize("fn", [color.srgb_to_linear, color.linear_to_srgb,
                                color.bt709_to_linear, color.linear_to_bt709])
def test_transfer_gradients_finite(fn):
    x = torch.tensor([-0.1, 0.0, 0.003, 0.0031308, 0.018, 0.04045, 0.5, 1.0, 1.2], requires_grad=True)
    fn(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_transfer_rejects_uint8():
    with pytest.raises(ValueError, match="uint8"):
        color.srgb_to_linear(np.zeros((2, 2, 3), np.uint8))
