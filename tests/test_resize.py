"""Resize: MATLAB bicubic, bit-exact on Set5 benchmark LR images; shapes, tensor/array agreement, errors, properties."""

import numpy as np
import pytest
import torch

from lab.images import modcrop, read_image
from lab.resize import imresize, imresize_tensor

SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _to_tensor(a: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)


@pytest.mark.reference
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_lr_bit_exact(set5_dir, scale):
    """imresize(modcrop(HR, s), 1/s) must reproduce MATLAB's benchmark LR files byte for byte."""
    for name in SET5:
        hr = modcrop(read_image(set5_dir / "HR" / f"{name}.bmp"), scale)
        expect = read_image(set5_dir / "LR_bicubic" / f"X{scale}" / f"{name}.png")
        got = imresize(hr, 1 / scale)
        assert got.dtype == np.uint8, name
        assert got.shape == expect.shape, name
        wrong = int((got != expect).sum())
        worst = np.abs(got.astype(int) - expect).max()
        assert wrong == 0, f"{name} x{scale}: {wrong} values differ from MATLAB (max {worst})"


@pytest.mark.parametrize("shape, kw, out", [
    ((10, 11), dict(scale=0.5), (5, 6)),  # ceil, as MATLAB
    ((255, 255, 3), dict(scale=1 / 3), (85, 85, 3)),
    ((30, 20, 1), dict(scale=0.1), (3, 2, 1)),  # 30 * 0.1 = 3.0000000000000004 must not become 4
    ((7, 9, 4), dict(scale=2.5), (18, 23, 4)),
    ((12, 16, 3), dict(size=(5, 40)), (5, 40, 3)),
])
def test_output_shapes(shape, kw, out):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert imresize(img, **kw).shape == out
    t = imresize_tensor(torch.rand(2, 3, *shape[:2]), **kw)
    assert t.shape == (2, 3, *out[:2])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtype_kept(dtype):
    img = (np.random.default_rng(1).random((8, 8, 3)) * 200).astype(dtype)
    assert imresize(img, 0.5).dtype == dtype


@pytest.mark.parametrize("kw", [dict(scale=0.5), dict(scale=1 / 3), dict(scale=0.37), dict(scale=2),
                                dict(scale=3), dict(size=(20, 90)), dict(size=(50, 17))])
def test_tensor_matches_array_on_floats(kw):
    img = np.random.default_rng(2).random((37, 41, 3))
    ref = imresize(img, **kw)
    t64 = imresize_tensor(_to_tensor(img), **kw)[0].numpy().transpose(1, 2, 0)
    t32 = imresize_tensor(_to_tensor(img, torch.float32), **kw)[0].numpy().transpose(1, 2, 0)
    assert np.abs(t64 - ref).max() < 1e-12
    assert np.abs(t32 - ref).max() < 1e-5


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 3])
def test_constant_stays_constant(scale):
    img = np.full((24, 30, 3), 173, np.uint8)
    assert (imresize(img, scale) == 173).all()
    assert np.allclose(imresize(img / 255.0, scale), 173 / 255, atol=1e-12)
    assert torch.allclose(imresize_tensor(torch.full((1, 3, 24, 30), 0.3), scale=scale), torch.tensor(0.3), atol=1e-6)


def test_scale_one_is_identity():
    img = np.random.default_rng(3).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    assert np.array_equal(imresize(img, 1), img)


def test_linear_ramp_follows_matlab_coordinate_mapping():
    """Keys' cubic reproduces linear functions, so away from borders a ramp samples u - 1 = x/s + (1 - 1/s)/2 - 1."""
    ramp = np.tile(np.arange(64, dtype=np.float64), (4, 1))
    for s in (0.5, 2.0, 0.25):
        out = imresize(ramp, s)[0]
        j = np.arange(out.size)
        expect = (j + 1) / s + 0.5 * (1 - 1 / s) - 1
        inner = slice(int(3 / s) + 2, out.size - int(3 / s) - 2)
        assert np.allclose(out[inner], expect[inner], atol=1e-9), s


@pytest.mark.parametrize("s", [2, 3, 4])
def test_upscale_then_downscale_is_nearly_identity(s):
    y, x = np.mgrid[0:40, 0:48] / 40.0
    img = 0.5 + 0.3 * np.sin(2 * np.pi * 0.7 * x) * np.cos(np.pi * y)
    back = imresize(imresize(img, s), 1 / s)
    assert np.abs(back - img)[4:-4, 4:-4].max() < 1e-4
    assert np.abs(back - img).max() < 1e-2


def test_tensor_is_differentiable_and_survives_inference_mode_cache():
    with torch.inference_mode():  # the first call fills the cache inside inference mode
        imresize_tensor(torch.rand(1, 3, 21, 22), scale=0.5)
    x = torch.rand(2, 3, 21, 22, requires_grad=True)
    imresize_tensor(x, scale=0.5).sum().backward()
    # each output pixel's weights sum to 1, so the gradient sums to the number of outputs
    assert torch.isclose(x.grad.sum(), torch.tensor(2 * 3 * 11 * 11.0))


@pytest.mark.parametrize("kw, match", [
    (dict(scale=0), "scale"), (dict(scale=-2), "scale"), (dict(scale=float("nan")), "scale"),
    (dict(), "exactly one"), (dict(scale=0.5, size=(3, 3)), "exactly one"),
    (dict(size=(0, 4)), "size"), (dict(size=(4,)), "size"),
])
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        imresize(np.zeros((8, 8, 3), np.uint8), **kw)
    with pytest.raises(ValueError, match=match):
        imresize_tensor(torch.zeros(1, 3, 8, 8), **kw)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="ndim=1"):
        imresize(np.zeros(8), 0.5)
    with pytest.raises(ValueError, match="ndim=4"):
        imresize(np.zeros((1, 8, 8, 3)), 0.5)
    with pytest.raises(ValueError, match="int32"):
        imresize(np.zeros((8, 8), np.int32), 0.5)
    with pytest.raises(ValueError, match="ndim=3"):
        imresize_tensor(torch.zeros(3, 8, 8), scale=0.5)
    with pytest.raises(ValueError, match="float"):
        imresize_tensor(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), scale=0.5)
