"""What the README and the train notebook's parameter comments name works at the notebook's default settings: every
loss spec on a default-size batch (48 px LR patches x2 = 96 px), every schedule, every degradation preset."""

from __future__ import annotations

import re

import pytest
import torch

from lab import degrade
from lab.losses import parse_loss
from lab.params import notebook_defaults, notebook_path, parameters_cell
from lab.schedules import make_schedule
from lab.utils import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
PARAMS = parameters_cell(notebook_path("train"))
DEFAULTS = notebook_defaults("train")
SPECS = sorted({m.strip() for m in re.findall(r'(?<![a-z_])loss[ =]+"([^"]+)"', README + PARAMS)} | {DEFAULTS["loss"]}
               | set(re.findall(r"like ([a-z0-9_.+* ]+?) \(lab\.losses\)", PARAMS)))


def test_the_docs_name_loss_examples():
    assert "l1 + 0.1*msssim" in SPECS, SPECS
    assert len(SPECS) >= 3, SPECS


@pytest.mark.parametrize("spec", SPECS)
def test_every_documented_loss_spec_runs_on_a_default_batch(spec):
    side = DEFAULTS["patch_size"] * DEFAULTS["scale"]
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, side, side, generator=g)
    pred = (target + 0.1 * torch.randn(2, 3, side, side, generator=g)).clamp(0, 1).requires_grad_(True)
    loss = parse_loss(spec)(pred, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert float(loss) > 0
    assert torch.isfinite(pred.grad).all()


SCHEDULES = [n for n in re.findall(r"`([a-z_]+)`", README.split("| schedule |")[1].split("|")[0].split(";")[0])
             if n != "schedule"]


def test_the_docs_name_every_schedule():
    from lab.schedules import SCHEDULES as REGISTERED

    assert set(SCHEDULES) == set(REGISTERED), "the README's schedule row lists the registry"


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_documented_schedule_runs(name):
    f = make_schedule(name, DEFAULTS["lr"], 352)
    assert all(0 <= f(i / 352) <= DEFAULTS["lr"] * (1 + 1e-9) for i in range(352))


NOT_PRESETS = {"builtin"}  # named in the presets paragraph as a bank source of `realsr`, not a preset
PRESETS = sorted(set(re.findall(r"`([a-z_]+)`", README.split("Presets (`lab.degrade.list_presets()`")[1]
                                .split("The data loader")[0])) - NOT_PRESETS)


def test_the_docs_name_every_preset_and_only_presets():
    assert PRESETS == sorted(degrade.list_presets()), "the README's presets paragraph lists the registry"


@pytest.mark.parametrize("name", PRESETS)
def test_every_documented_preset_builds_at_default_scale(name):
    preset = degrade.PRESETS[name]
    scale = preset.native_scale or DEFAULTS["scale"]
    if preset.required:
        with pytest.raises(ValueError, match="needs"):  # the message says what to pass
            degrade.build(name, scale=scale)
        return
    pipe = degrade.build(name, scale=scale)
    hr = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    assert pipe(hr, __import__("numpy").random.default_rng(0)).shape[-1] == 96 // scale
