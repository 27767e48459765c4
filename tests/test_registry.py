"""One registry idiom: every registry refuses duplicates and names the known entries, and every registered entry of
every registry is exercised here, so a new model, op, optimizer or switcher is tested the moment it registers.
(Losses, presets and schedules have their own registry-parametrized tests in their modules' test files.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lab import degrade, gan, infer, learner, models
from lab.degrade import sampling
from lab.losses import LOSSES
from lab.registry import Registry, build
from lab.schedules import SCHEDULES
from lab.vocab import UnknownName

REGISTRIES = {"model": models.MODELS, "loss": LOSSES, "degradation op": degrade.OPS,
              "degradation preset": degrade.PRESETS, "schedule": SCHEDULES, "optimizer": learner.OPTIMIZERS,
              "switcher": gan.SWITCHERS, "post-processing op": infer.POST}


def test_registry_refuses_duplicates_and_lists_known_names():
    reg = Registry("widget")

    @reg.register
    def knob(size: int = 1, *, color: str = "red"):
        return size, color

    with pytest.raises(KeyError, match="already registered"):
        reg.register(knob)
    with pytest.raises(UnknownName, match="unknown widget 'nob'; known widgets: knob") as e:
        reg["nob"]
    assert str(e.value) == "unknown widget 'nob'; known widgets: knob", "one line, without KeyError's repr quotes"
    assert reg.check_kwargs("knob", {"size": 2, "shape": 1}) == (["shape"], ["size", "color"])
    with pytest.raises(ValueError, match=r"does not take \['shape'\]; it takes \['size', 'color'\]"):
        build(reg, "knob", shape=1)
    assert build(reg, "knob", 3, color="blue") == (3, "blue")


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_speaks_the_same_idiom(kind):
    reg = REGISTRIES[kind]
    assert isinstance(reg, Registry)
    assert len(reg) >= 2
    with pytest.raises(UnknownName, match=f"unknown {kind} 'no_such_thing'; known .*{reg.names()[0]}"):
        reg["no_such_thing"]


@pytest.mark.parametrize("name", models.list_models())
def test_every_model_builds_with_its_defaults_and_maps_shapes(name):
    kw = {"model": "edsr_baseline"} if name == "linear_light" else {}
    with torch.device("meta"):  # shapes only: the published defaults cost nothing to build here
        m = models.create(name, **kw)
        x = torch.empty(1, getattr(m, "in_ch", 3), 32, 32)
        cond = getattr(m, "cond_ch", 0)
        y = m(x, torch.empty(1, cond, 16, 16)) if cond else m(x)
    assert isinstance(m, nn.Module)
    assert m.model_name == name
    if name.startswith("disc_"):
        assert y.shape[0] == 1, "a critic gives logits per image (or per patch)"
    else:
        s = getattr(m, "scale", 1)
        assert tuple(y.shape) == (1, getattr(m, "out_ch", 3), 32 * s, 32 * s)


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    d = tmp_path_factory.mktemp("banks")
    (d / "kernels").mkdir()
    np.save(d / "kernels" / "k0.npy", np.outer(np.hanning(9), np.hanning(9)).astype(np.float32))
    noise = degrade.NoiseBank(np.random.default_rng(0).normal(0, 0.02, (4, 16, 16, 3)).astype(np.float32))
    return {"kernel_bank": str(d / "kernels"), "noise_bank": str(noise.save(d / "noise.npz"))}


@pytest.mark.parametrize("name", degrade.list_ops())
def test_every_degradation_op_samples_and_replays(name, banks):
    op = degrade.get_op(name)
    ranges = {}
    if name == "kernel_bank":
        ranges = {"path": banks["kernel_bank"]}
    elif name == "bank_noise":
        ranges = {"path": banks["noise_bank"]}
    elif name == "hr_crop":
        ranges = {"height": 24, "width": 24}
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    params = op.sample_params(np.random.default_rng(3), **ranges)
    target = (16, 16)
    a, b = op.apply(x, params, target), op.apply(x, params, target)
    assert torch.equal(a, b), "the same params give the same bytes"
    assert a.dtype == torch.float32
    assert float(a.min()) >= 0
    assert float(a.max()) <= 1
    assert op.hr == (name in sampling.OPS and name.startswith("hr_"))


@pytest.mark.parametrize("name", learner.OPTIMIZERS.names())
def test_every_optimizer_takes_a_step_downhill(name):
    w = nn.Parameter(torch.tensor([2.0, -3.0]))
    opt = learner.make_opt(name)([w], lr=0.1)
    before = float((w ** 2).sum())
    for _ in range(3):
        (w ** 2).sum().backward()
        opt.step()
        opt.zero_grad()
    assert float((w ** 2).sum()) < before


def test_sgd_momentum_is_the_first_beta():
    w = nn.Parameter(torch.zeros(2))
    assert learner.make_opt("sgd", betas=(0.5, 0.999))([w], lr=0.1).hypers[0]["mom"] == 0.5
    assert learner.make_opt("adam", betas=(0.8, 0.99))([w], lr=0.1).hypers[0]["sqr_mom"] == 0.99


@pytest.mark.parametrize("name", gan.SWITCHERS.names())
def test_every_switcher_builds_and_refuses_foreign_options(name):
    sw = gan.make_switcher(name)
    assert type(sw) is gan.SWITCHERS[name]
    with pytest.raises(ValueError, match="does not take"):
        gan.make_switcher(name, no_such_option=1)


@pytest.mark.parametrize("name", infer.POST.names())
def test_every_post_op_keeps_the_range_and_shape(name):
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    y = infer.postprocess(x, [name])
    assert y.shape == x.shape
    assert float(y.min()) >= 0
    assert float(y.max()) <= 1
