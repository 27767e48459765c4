"""A model out of the lab: ONNX (dynamic height and width) and TorchScript, each checked against PyTorch.

`export_onnx` uses PyTorch's TorchScript-based ONNX exporter (opset 17) with the batch, height and width axes
dynamic, then runs the file in onnxruntime on two input sizes (the traced one and another) and compares with
PyTorch: a model whose graph froze a size (a Python-side computation on the input shape) fails the second size
and is refused with that reason, never shipped silently wrong. `export_torchscript` traces the model
(`torch.jit.trace`, `torch.jit.script` being deprecated) and checks the traced module the same way.

SRCNN and VDSR upscale inside `forward` with MATLAB-exact bicubic (`lab.resize`), whose interpolation matrices are
built in NumPy from the input size: no graph can hold that for every size. They are refused for dynamic export
with the reason, or exported for one fixed input size (`fixed_hw`), where the matrices are constants. Their
alternative: upscale outside the model (bicubic, as the papers do) and export with scale 1.

Measured over the registry: every SR architecture exports with dynamic sizes except SRCNN and VDSR (above); the
same-size U-Nets (`resunet`, `resnet_generator`) pad to their size multiple with Python arithmetic on the traced
shape and are refused at the odd check size, and SRN's antialiased resize has no ONNX operator (refused with the
exporter's reason).

Tensors in and out are (B, C, H, W) float32 in [0, 1], C = the model's `in_ch` (1 for Y-channel models).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lab.utils import atomic_write_bytes

TOLERANCE = 1e-4  # max abs difference to PyTorch, in [0, 1] units
CHECK_SIZES = ((32, 40), (45, 61))  # traced size, then another (odd) size that a frozen graph fails
INSIDE_UPSCALERS = ("srcnn", "srcnn_rgb", "vdsr")  # upscale in forward with NumPy-built bicubic matrices
NOT_SR = ("disc_",)  # discriminators are no image-to-image model to export


def onnx_available() -> str | None:
    """None when onnx and onnxruntime import, else the reason (what to install)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed: pip install 'restoration-lab[export]' (onnx, onnxruntime)"
    return None


def _name(model: nn.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


def check_exportable(model: nn.Module, fixed_hw: tuple[int, int] | None = None) -> None:
    """ValueError naming why `model` cannot be exported with dynamic height and width (see the module doc)."""
    name = _name(model)
    if name.startswith(NOT_SR):
        raise ValueError(f"{name} is a discriminator, not an image-to-image model; export the generator's run")
    if name in INSIDE_UPSCALERS and fixed_hw is None and int(getattr(model, "scale", 1)) != 1:
        raise ValueError(f"{name} upscales inside forward with MATLAB bicubic matrices built in NumPy per input "
                         "size, which no exported graph holds for every size; export it for one input size "
                         "(--fixed-size HxW), or with scale 1 and bicubic upscaling outside the model")


def _inputs(model: nn.Module, fixed_hw: tuple[int, int] | None, seed: int = 0) -> list[torch.Tensor]:
    in_ch = int(getattr(model, "in_ch", 3))
    g = torch.Generator().manual_seed(seed)
    sizes = [fixed_hw] if fixed_hw else list(CHECK_SIZES)
    return [torch.rand(1, in_ch, h, w, generator=g) for h, w in sizes]


def _compare(name: str, ref: torch.Tensor, got: np.ndarray | torch.Tensor, fmt: str) -> float:
    got_t = torch.as_tensor(np.asarray(got)) if not isinstance(got, torch.Tensor) else got
    if tuple(got_t.shape) != tuple(ref.shape):
        raise ValueError(f"{name}: the {fmt} export gives shape {tuple(got_t.shape)} where PyTorch gives "
                         f"{tuple(ref.shape)}: its graph froze the traced input size; it does not export with "
                         "dynamic height and width")
    diff = float((got_t.float() - ref.float()).abs().max())
    if not diff <= TOLERANCE:
        raise ValueError(f"{name}: the {fmt} export differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}) at input "
                         f"{tuple(ref.shape[-2:])} x 1/scale; it does not export faithfully")
    return diff


def export_onnx(model: nn.Module, path: str | os.PathLike, fixed_hw: tuple[int, int] | None = None,
                opset: int = 17) -> dict[str, float | str]:
    """Write `model` as ONNX (dynamic B, H, W unless `fixed_hw`), checked in onnxruntime against PyTorch on every
    check size; returns {'max_abs_diff', 'path'}. ValueError (no file left) when the export is not faithful."""
    reason = onnx_available()
    if reason:
        raise ModuleNotFoundError(reason)
    import onnxruntime as ort

    check_exportable(model, fixed_hw)
    model = model.eval().float().cpu()
    xs = _inputs(model, fixed_hw)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = None if fixed_hw else {"lr": {0: "batch", 2: "height", 3: "width"},
                                  "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
    try:
        try:
            with torch.no_grad():
                torch.onnx.export(model, (xs[0],), str(tmp), dynamo=False, input_names=["lr"], output_names=["sr"],
                                  dynamic_axes=axes, opset_version=opset)
        except Exception as e:  # noqa: BLE001 - the exporter's own errors become the refusal's reason
            raise ValueError(f"{_name(model)}: PyTorch's ONNX exporter refuses it ({str(e).splitlines()[0][:200]})"
                             ) from None
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        diff = 0.0
        for x in xs:
            with torch.no_grad():
                ref = model(x)
            try:
                got = sess.run(None, {"lr": x.numpy()})[0]
            except Exception as e:  # noqa: BLE001 - onnxruntime's own errors become the refusal's reason
                raise ValueError(f"{_name(model)}: onnxruntime cannot run the export at input {tuple(x.shape[-2:])}"
                                 f" ({str(e).splitlines()[0][:160]}); it does not export with dynamic height and "
                                 "width") from None
            diff = max(diff, _compare(_name(model), ref, got, "ONNX"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"max_abs_diff": diff, "path": str(path)}


def export_torchscript(model: nn.Module, path: str | os.PathLike,
                       fixed_hw: tuple[int, int] | None = None) -> dict[str, float | str]:
    """Write `model` traced to TorchScript, checked against PyTorch on every check size (see `export_onnx`)."""
    import io

    check_exportable(model, fixed_hw)
    model = model.eval().float().cpu()
    xs = _inputs(model, fixed_hw)
    with torch.no_grad():
        traced = torch.jit.trace(model, (xs[0],), check_trace=False)
        diff = 0.0
        for x in xs:
            try:
                got = traced(x)
            except RuntimeError as e:
                raise ValueError(f"{_name(model)}: the traced module cannot run at input {tuple(x.shape[-2:])} "
                                 f"({str(e).splitlines()[0][:160]}); it does not trace for every size") from None
            diff = max(diff, _compare(_name(model), model(x), got, "TorchScript"))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    atomic_write_bytes(path, buf.getvalue())
    return {"max_abs_diff": diff, "path": str(path)}
