"""Measures taken on a run's saved outputs (its first validation image and the HR it was scored against), named in
a study's `measures:`."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from lab.images import read_image
from lab.metrics import flattest_window, hf_energy_ratio
from lab.runs import Run


def valid_pair(path: str) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """(output, HR, scale) of a run's first validation image as (1, 3, H, W) tensors in [0, 1], or None."""
    run = Run(path)
    names = run.eval_images("valid")
    if not names:
        return None
    out, hr = run.eval_output("valid", names[0]), run.eval_reference("valid", names[0], "hr")
    if not (out.is_file() and hr.is_file()):
        return None
    a, b = (torch.from_numpy(read_image(p)).permute(2, 0, 1)[None].float() / 255 for p in (out, hr))
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    return a[..., :h, :w], b[..., :h, :w], max(1, int(run.params.get("scale") or 1))


def checkerboard(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """High-frequency energy of the output over the HR's in the HR's flattest 32 px window (lab.metrics): a grid
    pattern adds energy where the image should be flat, so compare arms (below 1 the output is smoother there
    than the HR, whose grain counts too: a blurry x4 output reads far below 1 with or without a grid)."""
    y, x = flattest_window(hr, 32, border=scale)
    return float(hf_energy_ratio(sr[..., y:y + 32, x:x + 32], hr[..., y:y + 32, x:x + 32])[0])


def sharpness(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """High-frequency energy of the whole output over the HR's (border cropped): below 1 blurrier than the
    ground truth, 1 as detailed, above 1 more (noise, hallucinated texture). A proxy for LPIPS, which needs
    ImageNet weights the lab does not have: it sees blur, it cannot tell true detail from invented detail."""
    c = (..., slice(scale, -scale), slice(scale, -scale))
    return float(hf_energy_ratio(sr[c], hr[c])[0])


MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], float]] = {
    "checkerboard": checkerboard, "sharpness": sharpness}


def measure(path: str, names: Sequence[str]) -> dict[str, float]:
    """The named MEASURES of a run's validation output ({} when it saved none)."""
    pair = valid_pair(path) if names else None
    return {f"measure.{n}": MEASURES[n](*pair) for n in names} if pair else {}

