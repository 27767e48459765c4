"""What an inference run (`lab infer`, `lab.inference`) recorded, read back: its pictures, the file of each output,
the input it came from, and the reference picture it is judged beside (bicubic upscaling of the input, fitted as
the output was). The ledger's comparison views read inference runs through here, as they read evaluations through
`lab.runs.Run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from lab.images import read_image, tensor_to_uint8, uint8_to_tensor
from lab.resize import imresize_tensor
from lab.runs import Run
from lab.sizing import fit, parse_size

KIND = "infer"  # the params' `kind` of an inference run
LABEL = "infer"  # the set label its per-picture table is kept under


def is_inference(run: Run) -> bool:
    """Whether `run` is an inference run."""
    return run.params.get("kind") == KIND


def records(run: Run, label: str = LABEL) -> dict[str, dict[str, Any]]:
    """{picture name: its record (input, frame, output file, size, hf_vs_bicubic)} of an inference run; {} for
    other runs or another label."""
    if label != LABEL or not is_inference(run):
        return {}
    table = run.eval_table(LABEL) or []
    return {r["image"]: r for r in table if isinstance(r, dict) and "image" in r}


def output_file(run: Run, label: str, image: str) -> Path | None:
    """The output file of picture `image` of an inference run, when it exists; else None."""
    rec = records(run, label).get(image)
    p = Path(rec["output"]) if rec and rec.get("output") else None
    return p if p is not None and p.is_file() else None


def read_input(rec: dict[str, Any]) -> np.ndarray:
    """The input picture of a record (a picture file, or frame `frame` of a video) as HWC uint8 RGB."""
    if rec.get("frame") is None:
        return read_image(rec["input"])
    cap = cv2.VideoCapture(str(rec["input"]))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(rec["frame"]))
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok:
        raise FileNotFoundError(f"frame {rec['frame']} of {rec['input']!r} cannot be read any more")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def bicubic_reference(lr: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """Bicubic upscaling of an input batch by the run's scale, fitted to its size as its outputs were.

    Shape: (B, C, h, w) -> the outputs' shape.
    """
    scale = int(params.get("scale") or 1)
    up = imresize_tensor(lr, scale=scale) if scale > 1 else lr
    size = parse_size(params.get("size") or None)
    return fit(up, size, params.get("fit") or "pad") if size is not None else up


def references(run: Run, label: str, image: str) -> dict[str, np.ndarray]:
    """{'LR (nearest)', 'bicubic'} of picture `image` of an inference run, at its output's size; {} if unknown."""
    rec = records(run, label).get(image)
    if rec is None:
        return {}
    try:
        lr = read_input(rec)
    except (FileNotFoundError, ValueError):
        return {}
    bic = tensor_to_uint8(bicubic_reference(uint8_to_tensor(lr), run.params).clamp(0, 1))
    near = cv2.resize(lr, (bic.shape[1], bic.shape[0]), interpolation=cv2.INTER_NEAREST)
    return {"LR (nearest)": near, "bicubic": bic}
