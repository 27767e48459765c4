"""Pipelines: an optional `hr_ops` stage (geometry on the HR) then stages of steps, sampled once per image
(`Pipeline.sample(rng)` -> params) and applied deterministically (`apply` / `apply_pair`)."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from lab.degrade.functional import check_probability, is_number
from lab.degrade.sampling import flag, get_op
from lab.images import check_image_tensor

# ------------------------------------------------------------------------------------------------- pipeline

@dataclass
class Step:
    """One step of a pipeline: its `name` (unique; override prefix), the `op`, its `ranges` and probability."""

    name: str
    op: str
    ranges: dict[str, Any] = field(default_factory=dict)
    prob: float = 1.0


@dataclass
class Stage:
    """Blocks of steps run in order (or in a sampled order with `shuffle`), the whole stage with probability `prob`."""

    name: str
    blocks: list[list[Step]]
    shuffle: bool = False
    prob: float = 1.0


def plain(v: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python, recursively (JSON-able config values)."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return str(v)
    return v


class Pipeline:
    """An ordered degradation: `hr_ops` (HR geometry), then `stages`; `sample(rng)` -> params, `apply(hr, params)`.

    `apply` accepts one params dict (shared by the whole batch; the batch is processed at once, noise drawn per
    image) or a list of B dicts (one per image). See the module doc for the params layout and presets.
    """

    def __init__(self, stages: Sequence[Stage], scale: float = 2, hr_ops: Sequence[Step] = (), name: str = "custom",
                 overrides: dict[str, Any] | None = None):
        if isinstance(scale, bool) or not is_number(scale) or not math.isfinite(float(scale)) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self.scale = int(scale) if float(scale) == int(scale) else float(scale)
        self.name, self.stages, self.hr_ops = name, list(stages), list(hr_ops)
        self.overrides = plain(dict(overrides or {}))
        names: list[str] = []
        for step, where in [(s, "hr_ops") for s in self.hr_ops] + [(s, st.name) for st in self.stages
                                                                    for b in st.blocks for s in b]:
            op = get_op(step.op)
            if op.hr != (where == "hr_ops"):
                raise ValueError(f"step {step.name!r}: op {step.op!r} is {'an HR' if op.hr else 'an image'} op; "
                                 f"put it in {'hr_ops' if op.hr else 'a stage'}, not in {where!r}")
            check_probability(step.prob, f"probability of step {step.name!r}")
            if step.op == "downscale" and step.prob != 1:
                raise ValueError(f"step {step.name!r}: a downscale must always run (prob 1), got {step.prob}")
            names.append(step.name)
        for st in self.stages:
            check_probability(st.prob, f"probability of stage {st.name!r}")
            names.append(st.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"step and stage names must be unique, repeated: {dup}")
        rng = np.random.default_rng(0)  # dry run: bad ranges fail at build time, not in the first batch
        for step in self._steps():
            get_op(step.op).sample_params(rng, **step.ranges)

    def _steps(self) -> list[Step]:
        return self.hr_ops + [s for st in self.stages for b in st.blocks for s in b]

    @property
    def changes_hr(self) -> bool:
        """True when `hr_ops` reshape the HR: data code must then use `apply_pair` and train on its new HR."""
        return bool(self.hr_ops)

    def __repr__(self) -> str:
        stages = " | ".join(",".join(s.name for b in st.blocks for s in b) for st in self.stages)
        return f"Pipeline({self.name!r}, scale={self.scale}, hr_ops={[s.name for s in self.hr_ops]}, {stages})"

    def _sample_step(self, rng: np.random.Generator, step: Step) -> dict | None:
        if not flag(rng, step.prob, f"prob of {step.name}"):
            return None
        return get_op(step.op).sample_params(rng, **step.ranges)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """All random parameters for one image (plain JSON-able values): {'hr': {step: params | None},
        'stages': [{'name', 'apply', 'order', 'steps': {step: params | None}}]}.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"Pipeline.sample needs a numpy.random.Generator, got {type(rng).__name__}")
        out: dict[str, Any] = {"hr": {s.name: self._sample_step(rng, s) for s in self.hr_ops}, "stages": []}
        for st in self.stages:
            run = flag(rng, st.prob, f"prob of stage {st.name}")
            order = [int(i) for i in rng.permutation(len(st.blocks))] if (run and st.shuffle) \
                else list(range(len(st.blocks)))
            steps = {s.name: (self._sample_step(rng, s) if run else None) for b in st.blocks for s in b}
            out["stages"].append({"name": st.name, "apply": run, "order": order, "steps": steps})
        return out

    def sample_batch(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        """`n` independent `sample(rng)` draws, one per image of a batch."""
        return [self.sample(rng) for _ in range(int(n))]

    def target_size(self, hw: Sequence[int]) -> tuple[int, int]:
        """The LR size (h, w) this pipeline makes from an HR of size `hw` (after cropping to a multiple of scale)."""
        return int(hw[0] // self.scale), int(hw[1] // self.scale)

    def _run(self, hr: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(params, dict) or "stages" not in params or len(params["stages"]) != len(self.stages):
            raise ValueError(f"params do not fit pipeline {self.name!r} ({len(self.stages)} stages); sample them "
                             "with this pipeline's sample()")
        x = hr
        for step in self.hr_ops:
            p = params.get("hr", {}).get(step.name)
            if p is not None:
                x = get_op(step.op).apply(x, p)
        if isinstance(self.scale, int) and self.scale > 1:  # modcrop, so the LR is exactly HR / scale
            h, w = x.shape[-2:]
            x = x[..., :h - h % self.scale, :w - w % self.scale]
        new_hr = x
        target = self.target_size(x.shape[-2:])
        if min(target) < 1:
            raise ValueError(f"HR {tuple(x.shape[-2:])} is smaller than scale {self.scale}")
        for st, sp in zip(self.stages, params["stages"]):
            if not sp["apply"]:
                continue
            for bi in sp["order"]:
                for step in st.blocks[bi]:
                    p = sp["steps"].get(step.name)
                    if p is not None:
                        x = get_op(step.op).apply(x, p, target)
        if tuple(x.shape[-2:]) != target:
            raise ValueError(f"pipeline {self.name!r} ended at {tuple(x.shape[-2:])} instead of the target {target} "
                             f"(HR {tuple(new_hr.shape[-2:])} / scale {self.scale}); end it with a 'downscale' step")
        return (x.clone() if x is hr else x.contiguous()), new_hr  # never hand back the caller's tensor

    def apply_pair(self, hr: torch.Tensor, params: dict[str, Any] | Sequence[dict[str, Any]]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, new HR): the HR after `hr_ops` and the crop to a multiple of scale, and its degraded LR.

        Shape: (B, C, H, W) -> ((B, C, H' // scale, W' // scale), (B, C, H', W')); float in [0, 1].
        """
        check_image_tensor(hr, "hr")
        if isinstance(params, dict):
            return self._run(hr, params)
        params = list(params)
        if len(params) != hr.shape[0]:
            raise ValueError(f"got {len(params)} params dicts for a batch of {hr.shape[0]}")
        if all(p == params[0] for p in params[1:]):  # e.g. plain bicubic: the whole batch in one go
            return self._run(hr, params[0])
        pairs = [self._run(hr[i:i + 1], p) for i, p in enumerate(params)]
        shapes = {tuple(h.shape) for _, h in pairs}
        if len(shapes) > 1:
            raise ValueError(f"per-image hr_ops gave different HR sizes {sorted(shapes)}; degrade such images one "
                             "at a time")
        return torch.cat([lr for lr, _ in pairs]), torch.cat([h for _, h in pairs])

    def apply(self, hr: torch.Tensor, params: dict[str, Any] | Sequence[dict[str, Any]]) -> torch.Tensor:
        """The LR for `hr` with recorded `params` (deterministic: same params -> same bytes).

        Shape: (B, C, H, W) -> (B, C, H // scale, W // scale) (H, W cropped to multiples of scale first).
        """
        return self.apply_pair(hr, params)[0]

    def __call__(self, hr: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """apply(hr, sample(rng)). Shape: (B, C, H, W) -> (B, C, H // scale, W // scale)."""
        return self.apply(hr, self.sample(rng))

    def config(self) -> dict[str, Any]:
        """What a run records (JSON-able): preset name, scale, every step's op, ranges and probability, stages,
        overrides. `build(config, scale=config['scale'])` rebuilds the same pipeline.
        """
        def step(s: Step) -> dict[str, Any]:
            return {"name": s.name, "op": s.op, "ranges": plain(get_op(s.op).ranges(**s.ranges)), "prob": s.prob}

        return {"preset": self.name, "scale": self.scale, "overrides": copy.deepcopy(self.overrides),
                "hr_ops": [step(s) for s in self.hr_ops],
                "stages": [{"name": st.name, "shuffle": st.shuffle, "prob": st.prob,
                            "blocks": [[step(s) for s in b] for b in st.blocks]} for st in self.stages]}
