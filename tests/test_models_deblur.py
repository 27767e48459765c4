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
                                        ("channels", []), ("num_block", [1, 2, 3, 4]), ("kernel", 4),
                                        ("scale", 0), ("decoder", "middle")])
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


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_take_scale_and_do_sr_on_the_upscaled_input(name):
    """000 ##200-##205 train the deblurring generators as SR networks."""
    model = create(name, **SMALL, scale=2)
    assert model.scale == 2
    x = torch.rand(1, 3, 12, 10)
    y = _forward_backward(model, x)
    assert y.shape == (1, 3, 24, 20)
    same = create(name, **SMALL)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in same.parameters())


def test_num_block_along_the_path_as_log_000_writes_it():
    """000 ##77 "ResBlocks: 0, 1, 2, 8, 2, 1, 0": encoder stages 0..3, then decoder stages 2..0."""
    m = create("resunet", channels=[4, 8, 8, 8], num_block=[0, 1, 2, 8, 2, 1, 0], skip=False)
    assert [len(e) for e in m.net.enc] == [0, 1, 2, 8]
    assert [len(d) for d in m.net.dec] == [0, 1, 2, 0]
    per_stage = create("resunet", channels=[4, 8], num_block=[1, 2])
    assert [len(e) for e in per_stage.net.enc] == [1, 2]
    assert [len(d) for d in per_stage.net.dec] == [1, 2]
    y = _forward_backward(m, torch.rand(1, 3, 16, 16))
    assert y.shape == (1, 3, 16, 16)


def test_decoder_order_and_biases_per_part():
    """000 ##81 puts each decoder block's residual blocks before its upsampling instead of after; ##64 drops the
    ResBlocks' biases, ##65 those of the encoder and decoder blocks too."""
    path = [1, 1, 1, 2, 3]  # 3 levels: encoder 1, 1, 1; decoder blocks 1 and 0 get 2 and 3
    last = create("srn", channels=[4, 8, 16], num_block=path)
    first = create("srn", channels=[4, 8, 16], num_block=path, decoder="blocks_first")
    assert [len(d) for d in last.net.dec] == [3, 2, 0]  # after the upsampling: at the finer level
    assert [len(d) for d in first.net.dec] == [0, 3, 2]  # before it: at the coarser level
    x = torch.rand(1, 3, 16, 16)
    assert _forward_backward(first, x).shape == x.shape
    full = create("resunet", channels=[4, 8], num_block=1)
    no_res = create("resunet", channels=[4, 8], num_block=1, res_bias=False)
    none = create("resunet", channels=[4, 8], num_block=1, bias=False)
    res_biases = 2 * 2 * (4 + 8)  # one ResBlock per stage and side, two convs each
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in no_res.parameters()) == res_biases
    assert sum(p.numel() for p in none.parameters()) < sum(p.numel() for p in no_res.parameters())
    assert all(c.bias is None for c in no_res.net.enc[0][0].body if isinstance(c, torch.nn.Conv2d))


def test_srn_skip_concat():
    """000 ##202 "skip: add => concat": the encoder features are concatenated and fused by a 1x1 conv."""
    add = create("srn", channels=[4, 8], num_block=1)
    cat = create("srn", channels=[4, 8], num_block=1, fuse="concat")
    assert sum(p.numel() for p in cat.parameters()) - sum(p.numel() for p in add.parameters()) == 8 * 4 + 4
    assert _forward_backward(cat, torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
