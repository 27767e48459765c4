"""lab.vocab: every fixed set of names lives there and is what the lab checks against; every lookup of a name fails
one way (UnknownName, a KeyError naming the known names)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lab import callbacks, gan, infer, learner, mixup, models, params, vocab
from lab.models.profile import DTYPES as PROFILE_DTYPES
from lab.vocab import UnknownName


def test_the_vocabularies_live_in_one_place():
    assert params.CHOICES == {"amp": vocab.AMP_MODES, "clip_mode": vocab.CLIP_MODES, "mixup_space": vocab.MIXUP_SPACES,
                              "switcher": vocab.SWITCHERS, "gan_loss": vocab.ADV_LOSSES, "degrade_on": vocab.DEGRADE_ON}
    assert gan.SWITCHERS.names() == list(vocab.SWITCHERS)
    assert list(gan.CHANCE_LOSS) == list(vocab.ADV_LOSSES)
    assert callbacks.CLIP_MODES == vocab.CLIP_MODES
    assert learner.AMP_MODES == (None, *vocab.AMP_MODES)
    assert list(infer.AMP_DTYPES) == list(vocab.PRECISIONS)
    assert list(PROFILE_DTYPES) == list(vocab.PRECISIONS)
    assert PROFILE_DTYPES["bf16"] is torch.bfloat16
    assert infer.AMP_DTYPES["fp32"] is None, "fp32 inference runs without autocast"


LOOKUPS = {  # every fixed vocabulary, asked for a name it lacks
    "adversarial loss": lambda: gan.GeneratorLoss(kind="no_such_thing"),
    "switcher": lambda: gan.make_switcher("no_such_thing"),
    "clip mode": lambda: callbacks.ClipGrad(1.0, mode="no_such_thing"),
    "amp mode": lambda: learner.amp_callbacks("no_such_thing"),
    "amp precision": lambda: infer.infer(nn.Identity(), torch.rand(1, 3, 4, 4), amp="no_such_thing"),
    "mixup space": lambda: mixup.mixup_pair(
        torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), np.random.default_rng(0), space="no_such_thing"),
    "model": lambda: models.create("no_such_thing"),
}


@pytest.mark.parametrize("kind", sorted(LOOKUPS))
def test_every_vocabulary_lookup_fails_one_way_naming_the_known_names(kind):
    with pytest.raises(UnknownName, match=f"^unknown {kind} 'no_such_thing'; known .+: .+") as e:
        LOOKUPS[kind]()
    assert isinstance(e.value, KeyError), "UnknownName is the KeyError every registry raises"


def test_unknown_name_reads_as_one_line_and_choose_returns_the_name():
    e = vocab.unknown("widget", "nob", ["knob", "dial"])
    assert isinstance(e, KeyError)
    assert str(e) == "unknown widget 'nob'; known widgets: knob, dial", "no repr quotes around the message"
    assert vocab.choose("widget", "dial", ("knob", "dial")) == "dial"
    with pytest.raises(UnknownName, match="^unknown mode 3; known modes: 1, 2$"):
        vocab.choose("mode", 3, (1, 2))


def test_environment_variable_names_are_spelled_only_in_lab_vocab():
    import re

    from lab.utils import PROJECT_ROOT

    literal = re.compile(r"""["']LAB_[A-Z_]+["']""")
    found = [f"{p.relative_to(PROJECT_ROOT)}:{n}" for p in sorted((PROJECT_ROOT / "lab").rglob("*.py"))
             if p.name != "vocab.py" for n, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line)]
    assert not found, f"name these through lab.vocab's ENV_* constants: {found}"
    assert literal.search('os.environ.get("LAB_RUNS_DIR")'), "the pattern sees a literal"
