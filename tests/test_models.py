"""lab.models: the model registry (create, unknown names, keyword checks, published sizes) and self-describing
checkpoints."""

import pytest
import torch

from lab import models


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match="edsr_baseline"):
        models.create("edsr_tiny_typo")


def test_bad_kwarg_names_accepted_ones():
    with pytest.raises(TypeError):
        models.create("srcnn", bogus=1)


def test_published_parameter_counts():
    assert sum(p.numel() for p in models.create("srcnn").parameters()) == 57281
    n = sum(p.numel() for p in models.create("edsr_baseline", scale=2).parameters())
    assert abs(n - 1.37e6) / 1.37e6 < 0.01


@pytest.mark.parametrize("name,scale", [("edsr_baseline", 2), ("edsr_baseline", 3), ("edsr_baseline", 4),
                                        ("srcnn", 3)])
def test_forward_shape(name, scale):
    kw = {"num_block": 2, "num_feat": 16} if name.startswith("edsr") else {}
    m = models.create(name, scale=scale, **kw)
    x = torch.rand(1, m.in_ch, 10, 12)
    assert m(x).shape == (1, m.out_ch, 10 * scale, 12 * scale)


def test_checkpoint_round_trip(tmp_path):
    m = models.create("edsr_baseline", scale=3, num_block=2, num_feat=8)
    models.save_checkpoint(tmp_path / "m.pth", m, params={"lr": 1e-3})
    payload = torch.load(tmp_path / "m.pth", weights_only=True)
    assert payload["model_name"] == "edsr_baseline"
    assert payload["model_kwargs"]["scale"] == 3
    m2, info = models.load_checkpoint(tmp_path / "m.pth")
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(m.eval()(x), m2.eval()(x))
    assert info["params"] == {"lr": 1e-3}
    torch.save({"w": torch.zeros(1)}, tmp_path / "raw.pth")
    with pytest.raises(ValueError, match="load_pretrained"):
        models.load_checkpoint(tmp_path / "raw.pth")
