"""Named presets and `build`: a degradation pipeline from a preset name, a dict or a recorded config, with
overrides (see the package docstring for the presets and their override names)."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from lab.degrade.functional import is_number
from lab.degrade.pipeline import Pipeline, Stage, Step, plain
from lab.degrade.sampling import get_op
from lab.registry import Registry

# -------------------------------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class Preset:
    """A named pipeline recipe: `make(scale)` -> (hr_ops, stages); `aliases` map short override names."""

    make: Callable[[float], tuple[list[Step], list[Stage]]]
    doc: str
    native_scale: int | None = None  # 1 for same-size (restoration) presets
    aliases: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _single(name: str, steps: list[Step]) -> list[Stage]:
    return [Stage(name, [[s] for s in steps])]


def _second_order(scale: float) -> tuple[list[Step], list[Stage]]:
    # Real-ESRGAN (Wang et al. 2021, https://arxiv.org/abs/2107.10833) training options, approximately: kernels
    # 7..21 px, first blur sigma 0.2-3, second 0.2-1.5 (prob 0.8); resize up/down/keep 0.2/0.7/0.1 in [0.15, 1.5],
    # then 0.3/0.4/0.3 in [0.3, 1.2] of the target; noise Gaussian 1-30 (then 1-25) or Poisson 0.05-3 (then 2.5),
    # gray 40 %; JPEG 30-95; final sinc prob 0.8. Differences: our bicubic is MATLAB's (antialiased), JPEG is
    # OpenCV's rather than DiffJPEG, and the first resize is relative to the HR size.
    first = [Step("blur", "blur", {"sigma": (0.2, 3.0)}),
             Step("resize", "random_resize", {"probs": (0.2, 0.7, 0.1), "up": (1.0, 1.5), "down": (0.15, 1.0)}),
             Step("noise", "noise", {"sigma_255": (1.0, 30.0), "poisson_scale": (0.05, 3.0)}),
             Step("jpeg", "jpeg", {"quality": (30, 95)})]
    second = [Step("blur2", "blur", {"sigma": (0.2, 1.5)}, 0.8),
              Step("resize2", "random_resize", {"probs": (0.3, 0.4, 0.3), "up": (1.0, 1.2), "down": (0.3, 1.0),
                                                "relative_to": "target"}),
              Step("noise2", "noise", {"sigma_255": (1.0, 25.0), "poisson_scale": (0.05, 2.5)}),
              Step("jpeg2", "jpeg", {"quality": (30, 95)})]
    final = Stage("final", [[Step("final_resize", "downscale", {"mode": ["area", "bilinear", "bicubic"]}),
                             Step("final_sinc", "sinc", {}, 0.8)],
                            [Step("final_jpeg", "jpeg", {"quality": (30, 95)})]], shuffle=True)
    return [], [Stage("first", [[s] for s in first]), Stage("second", [[s] for s in second]), final]


PRESETS = Registry("degradation preset", {
    "bicubic": Preset(lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"})])),
                      "MATLAB bicubic downscaling (the benchmark LR)."),
    "blur_bicubic": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "gaussian_blur", {"sigma": (0.2, 3.0)}),
                                           Step("down", "downscale", {"mode": "bicubic"})])),
        "Gaussian blur of the HR, then MATLAB bicubic down."),
    "noisy_bicubic": Preset(
        lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"}),
                                           Step("noise", "gaussian_noise", {"sigma_255": (1.0, 25.0)})])),
        "MATLAB bicubic down, then Gaussian noise on the LR."),
    "jpeg": Preset(
        lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"}),
                                           Step("jpeg", "jpeg", {"quality": (30, 95)})])),
        "MATLAB bicubic down, then JPEG.", aliases={"quality": "jpeg_quality"}),
    "second_order": Preset(_second_order, "Real-ESRGAN second-order degradation (approximate published ranges)."),
    "realsr": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "kernel_bank", {}),
                                           Step("down", "downscale", {"mode": "nearest"}),
                                           Step("noise", "bank_noise", {"strength": 1.0})])),
        "RealSR: a real kernel from a bank, strided down, real noise from a bank (Ji et al. 2020).",
        aliases={"kernel_bank": "blur_path", "noise_bank": "noise_path"}, required=("kernel_bank", "noise_bank")),
    "deblur_motion": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "motion_blur", {}),
                                           Step("noise", "gaussian_noise", {"sigma_255": (0.0, 5.0)})])),
        "Same size: motion blur (line or camera-shake trajectory) + light Gaussian noise.", native_scale=1),
    "denoise_gaussian": Preset(
        lambda s: ([], _single("degrade", [Step("noise", "gaussian_noise", {"sigma_255": (0.0, 50.0)})])),
        "Same size: Gaussian noise, sigma 0-50 (0-255 units).", native_scale=1,
        aliases={"sigma": "noise_sigma", "sigma_255": "noise_sigma_255", "gray_prob": "noise_gray_prob"}),
})


def list_presets() -> list[str]:
    """Names of the degradation presets."""
    return PRESETS.names()


def _get_preset(name: str) -> Preset:
    return PRESETS[name]


def _override_table(hr_ops: list[Step], stages: list[Stage]) -> dict[str, tuple[Any, str]]:
    """Every override name -> (step or stage, key): '<step>_<range>', '<step>_prob', '<stage>_prob|shuffle'."""
    table: dict[str, tuple[Any, str]] = {}
    for s in hr_ops + [s for st in stages for b in st.blocks for s in b]:
        for key in get_op(s.op).defaults:
            table[f"{s.name}_{key}"] = (s, key)
        table[f"{s.name}_prob"] = (s, "prob")
    for st in stages:
        table[f"{st.name}_prob"] = (st, "prob")
        table[f"{st.name}_shuffle"] = (st, "shuffle")
    return table


def _current(obj: Any, key: str) -> Any:
    if isinstance(obj, Step) and key != "prob":
        return get_op(obj.op).ranges(**obj.ranges)[key]
    return getattr(obj, key)


def preset_overrides(name: str, scale: float = 2) -> dict[str, Any]:
    """Every override name `build(name, **overrides)` accepts, with its default (short aliases included)."""
    p = _get_preset(name)
    hr_ops, stages = p.make(scale)
    table = _override_table(hr_ops, stages)
    out = {k: plain(_current(o, key)) for k, (o, key) in table.items()}
    out.update({a: out[t] for a, t in p.aliases.items()})
    out["hr_ops"] = []
    return out


def _steps_from(items: Any, where: str) -> list[Step]:
    """Steps from [op, ranges, prob] lists / (op, ranges) / {'name', 'op', 'ranges', 'prob'} dicts."""
    out, counts = [], {}
    for it in items or []:
        if isinstance(it, Step):
            s = it
        elif isinstance(it, dict):
            unknown = set(it) - {"name", "op", "ranges", "prob"}
            if "op" not in it or unknown:
                raise ValueError(f"{where}: a step dict needs 'op' (and optionally 'name', 'ranges', 'prob'), "
                                 f"got keys {sorted(it)}")
            s = Step(it.get("name") or it["op"], it["op"], dict(it.get("ranges") or {}), it.get("prob", 1.0))
        elif isinstance(it, (list, tuple)) and 1 <= len(it) <= 3 and isinstance(it[0], str):
            s = Step(it[0], it[0], dict(it[1]) if len(it) > 1 and it[1] else {}, it[2] if len(it) > 2 else 1.0)
        else:
            raise ValueError(f"{where}: a step is [op, ranges, prob] or a dict with 'op', got {it!r}")
        get_op(s.op)
        counts[s.name] = counts.get(s.name, 0) + 1
        if counts[s.name] > 1:  # the same op twice in a list: name them op, op2, op3 ...
            s = Step(f"{s.name}{counts[s.name]}", s.op, s.ranges, s.prob)
        out.append(s)
    return out


def _pipeline_from_dict(d: dict[str, Any], scale: float) -> Pipeline:
    """A custom pipeline from {'steps': [...]} or {'stages': [{'name', 'blocks' | 'steps', 'shuffle', 'prob'}]}."""
    known = {"preset", "scale", "overrides", "hr_ops", "stages", "steps", "shuffle"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise KeyError(f"unknown key {unknown[0]!r} in a custom pipeline spec; known: {sorted(known)}")
    if ("stages" in d) == ("steps" in d):
        raise ValueError("a custom pipeline spec needs exactly one of 'steps' (one stage) or 'stages'")
    if "steps" in d:
        stages = [Stage("degrade", [[s] for s in _steps_from(d["steps"], "steps")], bool(d.get("shuffle", False)))]
    else:
        stages = []
        for i, st in enumerate(d["stages"]):
            name = st.get("name", f"stage{i + 1}")
            if "blocks" in st:
                blocks = [_steps_from(b, f"stage {name!r}") for b in st["blocks"]]
            else:
                blocks = [[s] for s in _steps_from(st.get("steps", []), f"stage {name!r}")]
            stages.append(Stage(name, blocks, bool(st.get("shuffle", False)), st.get("prob", 1.0)))
    return Pipeline(stages, scale, _steps_from(d.get("hr_ops"), "hr_ops"), d.get("preset", "custom"),
                    d.get("overrides"))


def _apply_overrides(hr_ops: list[Step], stages: list[Stage], overrides: dict[str, Any], aliases: dict[str, str],
                     what: str) -> list[Step]:
    """Set overrides on the steps / stages (in place); returns the hr_ops with `hr_ops=[...]` appended."""
    extra = overrides.pop("hr_ops", None)
    if extra:
        hr_ops = hr_ops + _steps_from(extra, "hr_ops")
    table = _override_table(hr_ops, stages)
    for k, v in overrides.items():
        key = aliases.get(k, k)
        if key not in table:
            raise KeyError(f"unknown override {k!r} for {what}; known: {sorted(set(table) | set(aliases))} "
                           "(and hr_ops)")
        obj, attr = table[key]
        if isinstance(obj, Step) and attr != "prob":
            ex = get_op(obj.op).exclusive.get(attr)
            obj.ranges[attr] = plain(v)
            if ex and v is not None:
                obj.ranges[ex] = None
        elif attr == "shuffle":
            obj.shuffle = bool(v)
        else:
            setattr(obj, attr, v)
    return hr_ops


def build(spec: str | dict[str, Any] | Pipeline | None = "bicubic", scale: int = 2, **overrides: Any) -> Pipeline:
    """A degradation pipeline from a preset name, a dict or a recorded config, with overrides.

    `spec`: a preset name (`list_presets()`; None = 'bicubic'); {'preset': name, **overrides}; or a custom
    {'steps': [[op, ranges, prob], ...]} / {'stages': [...], 'hr_ops': [...]} (what `Pipeline.config()` gives).
    A dict's 'scale', if present, must equal `scale`. Unknown names -> KeyError listing the known ones.
    """
    if isinstance(scale, bool) or not is_number(scale) or not math.isfinite(float(scale)) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if spec is None:
        spec = "bicubic"
    if isinstance(spec, Pipeline):
        spec = spec.config()
    if isinstance(spec, str) and spec.lstrip().startswith("{"):  # a JSON dict passed as a papermill string
        spec = json.loads(spec)
    if isinstance(spec, dict):
        d = copy.deepcopy(spec)
        if "scale" in d and float(d.pop("scale")) != float(scale):
            raise ValueError(f"the spec says scale={spec['scale']} but scale={scale} was passed; pass "
                             f"scale={spec['scale']}")
        if "stages" in d or "steps" in d:
            pipe = _pipeline_from_dict(d, scale)
            if overrides:
                hr_ops = _apply_overrides(pipe.hr_ops, pipe.stages, dict(overrides), {}, f"pipeline {pipe.name!r}")
                pipe = Pipeline(pipe.stages, scale, hr_ops, pipe.name, {**pipe.overrides, **overrides})
            return pipe
        if "preset" not in d:
            raise KeyError(f"a dict spec needs 'preset' (one of {PRESETS.names()}) or 'steps' / 'stages'; "
                           f"got keys {sorted(spec)}")
        name = d.pop("preset")
        d.pop("overrides", None)
        overrides = {**d, **overrides}
    elif isinstance(spec, str):
        name = spec.strip()
    else:
        raise ValueError(f"spec must be a preset name, a dict or a Pipeline, got {type(spec).__name__}")
    preset = _get_preset(name)
    if preset.native_scale is not None and float(scale) != preset.native_scale:
        raise ValueError(f"preset {name!r} is a same-size (scale {preset.native_scale}) degradation; call "
                         f"build({name!r}, scale={preset.native_scale})")
    missing = [r for r in preset.required if overrides.get(r) in (None, "")]
    if missing:
        raise ValueError(f"preset {name!r} needs " + " and ".join(f"{m}=..." for m in missing) +
                         f"; e.g. build({name!r}, scale={scale}, kernel_bank='kernels/', noise_bank='noise.npz') "
                         "(kernels: .npy/.png files; noise: lab.degrade.extract_noise_patches(...).save(); or "
                         "'builtin' for either: banks the lab makes from its own photos and kernel models)")
    hr_ops, stages = preset.make(scale)
    hr_ops = _apply_overrides(hr_ops, stages, dict(overrides), preset.aliases, f"preset {name!r}")
    return Pipeline(stages, scale, hr_ops, name, overrides)
