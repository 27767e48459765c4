"""Registered wrappers: linear-light training keeps sRGB at the boundaries and rebuilds from a checkpoint."""

import pytest
import torch
from torch import nn

from lab import models
from lab.color import linear_to_srgb
from lab.models.wrappers import LinearLight


def test_linear_light_round_trip_is_identity_and_inner_sees_linear_values():
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x"] = x
            return x

    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = LinearLight(Spy())(x)
    assert torch.allclose(out, x, atol=1e-5)
    assert torch.allclose(linear_to_srgb(seen["x"]), x, atol=1e-5)
    assert (seen["x"] <= x + 1e-7).all(), "linear light is darker than sRGB"
    assert (seen["x"] < x - 1e-3).any(), "linear light is darker than sRGB"


def test_linear_light_checkpoint_rebuilds_and_gradients_flow_out_of_range(tmp_path):
    net = models.create("linear_light", model="edsr_baseline", model_kwargs={"num_block": 1, "num_feat": 8},
                        scale=2)
    assert net.scale == 2
    assert isinstance(net.inner, nn.Module)
    assert net.inner.model_name == "edsr_baseline"
    x = torch.rand(1, 3, 6, 6, requires_grad=True)
    y = net(x)
    assert y.shape == (1, 3, 12, 12)
    (y * 5).sum().backward()  # large targets push outputs beyond 1: the encode curve still passes gradients
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    models.save_checkpoint(tmp_path / "ll.pth", net)
    again, payload = models.load_checkpoint(tmp_path / "ll.pth")
    assert payload["model_name"] == "linear_light"
    assert isinstance(again, LinearLight)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    with pytest.raises(ValueError, match="cannot wrap itself"):
        models.create("linear_light", model="linear_light")
