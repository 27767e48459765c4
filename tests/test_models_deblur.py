"""Deblurring generators and discriminators: registry-parametrized smoke tests, knobs, properties."""

from __future__ import annotations

import pytest
import torch

from lab.models import create, list_models, load_checkpoint, model_entrypoint, save_checkpoint

GENERATORS = [n for n in list_models() if model_entrypoint(n).__module__ == "lab.models.deblur"]
DISCRIMINATORS = [n for n in list_models() if model_entrypoint(n).__module__ == "lab.models.discriminators"]
SMALL = {"channels": [4, 8], "num_block": 1}  # tiny configs: the whole file runs in seconds on a shared CPU
KNOBS = [("norm", v) for v in ("instance", "batch", "none")] + [("act", v) for v in ("relu", "swish", "leaky")] + [
    (k, v) for k in ("se", "bias", "antialias", "skip", "tanh") for v in (True, False)] + [
    ("down", "strided"), ("down", "space_to_depth")]


def _forward_backward(model: torch.nn.Module, x: torch.Tensor, *args) -> torch.Tensor:
    model.train()
    y = model(x, *args)
    y.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), "missing or non-finite gradients"
    assert any(g.abs().sum() > 0 for g in grads)
    return y


def test_registered():
    assert {"srn", "resunet", "resnet_generator"} <= set(GENERATORS)
    assert {"disc_simple", "disc_vgg", "disc_patch"} <= set(DISCRIMINATORS)


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_shape_and_grad(name):
    torch.manual_seed(0)
    model = create(name, **SMALL, scale=1)
    assert model.scale == 1
    assert model.in_ch == 3
    assert model.out_ch == 3
    x = torch.rand(2, 3, 21, 34)  # not a multiple of anything: the model pads and crops itself
    y = _forward_backward(model, x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("knob,value", KNOBS)
def test_generator_knobs(name, knob, value):
    torch.manual_seed(0)
    model = create(name, **{**SMALL, knob: value})
    x = torch.rand(1, 3, 16, 16)
    y = _forward_backward(model, x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("knob,value", [("norm", "group"), ("act", "gelu"), ("down", "maxpool"),
                                        ("channels", []), ("num_block", [1, 2, 3]), ("kernel", 4),
                                        ("scale", 2)])
def test_generator_bad_knob(name, knob, value):
    with pytest.raises(ValueError, match="expected|accepted"):
        create(name, **{**SMALL, knob: value})


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_tanh_ranges(name):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = create(name, **SMALL, tanh=True, skip=False).eval()(x)
        assert y.min() >= 0
        assert y.max() <= 1
        y = create(name, **SMALL, tanh=True, skip=True).eval()(x)
        assert (y - x).abs().max() <= 1


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_skip_is_identity_when_tail_is_zero(name):
    model = create(name, **SMALL, skip=True, tanh=False).eval()
    torch.nn.init.zeros_(model.net.tail.weight)
    torch.nn.init.zeros_(model.net.tail.bias)
    x = torch.rand(1, 3, 20, 12)
    with torch.no_grad():
        assert torch.allclose(model(x), x)


def test_srn_multi_scale_outputs_and_shared_weights():
    torch.manual_seed(0)
    model = create("srn", **SMALL).eval()
    x = torch.rand(1, 3, 30, 20)
    with torch.no_grad():
        outs = model.forward_all(x)
        assert [tuple(o.shape[-2:]) for o in outs] == [(8, 5), (15, 10), (30, 20)]
        assert torch.equal(outs[-1], model(x))
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for p in create("srn", **SMALL, num_scales=1).parameters())  # weights shared over scales


@pytest.mark.parametrize("cell", ["lstm", "gru", "none"])
def test_srn_cells(cell):
    torch.manual_seed(0)
    model = create("srn", **SMALL, cell=cell)
    y = _forward_backward(model, torch.rand(1, 3, 16, 16))
    assert y.shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="accepted"):
        create("srn", **SMALL, cell="rnn")


def test_skip_needs_matching_channels():
    with pytest.raises(ValueError, match="out_ch"):
        create("resunet", **SMALL, in_ch=1, out_ch=3, skip=True)
    with pytest.raises(ValueError, match="out_ch"):
        create("srn", **SMALL, in_ch=1, out_ch=3, skip=True)
    for name in GENERATORS:
        assert create(name, **SMALL, in_ch=1, out_ch=3, skip=False)(torch.rand(1, 1, 8, 8)).shape == (1, 3, 8, 8)


def test_generator_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = create("srn", channels=[4, 8], num_block=1, norm="instance").eval()
    path = save_checkpoint(tmp_path / "srn.pth", model)
    loaded, _ = load_checkpoint(path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.eval()(x))


def _disc_out_shape(name: str, b: int, h: int, w: int) -> tuple[int, ...]:
    return (b, 1, h // 8 - 2, w // 8 - 2) if name == "disc_patch" else (b,)


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("norm", ["batch", "instance", "none", "spectral"])
def test_discriminator_logits(name, norm):
    torch.manual_seed(0)
    model = create(name, num_feat=4, norm=norm)
    x = torch.rand(2, 3, 32, 40)
    y = _forward_backward(model, x)
    assert y.shape == _disc_out_shape(name, 2, 32, 40)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_returns_raw_logits(name):
    model = create(name, num_feat=4, norm="none").eval()
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, 5.0)
    with torch.no_grad():
        assert torch.equal(model(torch.rand(2, 3, 32, 32)), torch.full(_disc_out_shape(name, 2, 32, 32), 5.0))


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_conditional(name):
    torch.manual_seed(0)
    model = create(name, num_feat=4, cond_ch=3)
    x, lr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16)
    y = _forward_backward(model, x, lr)  # the LR condition is resized to x
    assert y.shape == _disc_out_shape(name, 2, 32, 32)
    with torch.no_grad():
        model.eval()
        assert not torch.equal(model(x, lr), model(x, torch.rand(2, 3, 16, 16)))  # the condition is used
    with pytest.raises(ValueError, match="cond"):
        model(x)
    with pytest.raises(ValueError, match="cond"):
        create(name, num_feat=4)(x, lr)


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_bad_norm(name):
    with pytest.raises(ValueError, match="accepted"):
        create(name, norm="layer")


@pytest.mark.parametrize("size", [16, 40])
def test_disc_vgg_any_size(size):
    model = create("disc_vgg", num_feat=4, dense=16).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, size, size + 8)).shape == (2,)


def test_disc_patch_receptive_field_is_70():
    torch.manual_seed(0)
    model = create("disc_patch", num_feat=4, norm="none").eval()
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70
