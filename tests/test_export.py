"""Export: ONNX (dynamic H/W, run in onnxruntime) and TorchScript of tiny EDSR and IMDN match PyTorch within 1e-4;
SRCNN/VDSR are refused for dynamic sizes with the reason and export for a fixed size; the command's bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.cli import main
from lab.export import TOLERANCE, check_exportable, export_onnx, export_torchscript, onnx_available
from lab.models import create, save_checkpoint

needs_onnx = pytest.mark.skipif(onnx_available() is not None, reason=str(onnx_available()))
TINY = {"edsr_baseline": {"num_feat": 8, "num_block": 2}, "imdn": {"num_feat": 12, "num_block": 2}}


def _tiny(name):
    torch.manual_seed(0)
    return create(name, scale=2, **TINY[name]).eval()


@needs_onnx
@pytest.mark.parametrize("name", sorted(TINY))
def test_onnx_export_matches_pytorch_at_a_new_size(tmp_path, name):
    import onnxruntime as ort

    model = _tiny(name)
    got = export_onnx(model, tmp_path / "m.onnx")
    assert got["max_abs_diff"] <= TOLERANCE
    x = torch.rand(1, 3, 37, 23, generator=torch.Generator().manual_seed(3))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert y.shape == (1, 3, 74, 46)
    assert np.abs(y - ref).max() <= TOLERANCE


@pytest.mark.parametrize("name", sorted(TINY))
def test_torchscript_export_matches_pytorch_at_a_new_size(tmp_path, name):
    model = _tiny(name)
    export_torchscript(model, tmp_path / "m.pt")
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.rand(2, 3, 19, 29, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max() <= TOLERANCE


def test_inside_upscalers_are_refused_for_dynamic_sizes_with_the_reason():
    srcnn = create("srcnn", scale=2)
    with pytest.raises(ValueError, match="upscales inside forward"):
        check_exportable(srcnn)
    check_exportable(srcnn, fixed_hw=(24, 24))
    with pytest.raises(ValueError, match="discriminator"):
        check_exportable(create("disc_simple"))


def test_a_fixed_size_export_of_vdsr_is_faithful(tmp_path):
    torch.manual_seed(0)
    model = create("vdsr", scale=2, num_block=2, num_feat=8).eval()
    got = export_torchscript(model, tmp_path / "v.pt", fixed_hw=(20, 24))
    assert got["max_abs_diff"] <= TOLERANCE


def test_a_frozen_graph_is_refused_not_shipped(tmp_path):
    class ShapeFrozen(torch.nn.Module):
        in_ch = 3

        def forward(self, x):
            h, w = int(x.shape[-2]), int(x.shape[-1])  # a Python int: the trace keeps the traced size
            return torch.nn.functional.interpolate(x, size=(h * 2, w * 2), mode="nearest")

    with pytest.raises(ValueError, match="froze the traced input size|cannot run"):
        export_torchscript(ShapeFrozen(), tmp_path / "f.pt")
    assert not (tmp_path / "f.pt").exists()


def test_export_model_command(tmp_path, capsys):
    ck = save_checkpoint(tmp_path / "tiny.pth", _tiny("edsr_baseline"))
    assert main(["export-model", str(ck), "--torchscript", str(tmp_path / "m.pt")]) == 0
    assert "dynamic height and width" in capsys.readouterr().out
    assert main(["export-model", str(ck)]) == 2
    assert "nothing to write" in capsys.readouterr().err
    srcnn = save_checkpoint(tmp_path / "srcnn.pth", create("srcnn", scale=2))
    assert main(["export-model", str(srcnn), "--torchscript", str(tmp_path / "s.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "upscales inside forward" in err
    assert len(err.splitlines()) == 1
