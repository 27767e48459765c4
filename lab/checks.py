"""Checks of a run's params against what the lab knows, before a run directory is made: the registered names
(model, discriminator, loss spec, schedule, optimizer, degradation presets) and the scale, each failing with the
known names and the fix. Numeric ranges are `lab.params.check`'s."""

from __future__ import annotations

from typing import Any

from lab import user_code
from lab.degrade import build
from lab.evaluate import check_sets, parse_sets
from lab.learner import OPTIMIZERS
from lab.losses import parse_loss
from lab.models import MODELS, model_entrypoint
from lab.schedules import SCHEDULES
from lab.sources import set_label, valid_sets

SET_METRICS = ("psnr_y", "ssim_y")  # the image metrics every validation set is scored with (lab.learner)


def check_names(params: dict[str, Any]) -> dict[str, Any]:
    """`params` if its names are known (only the keys present are checked); KeyError / ValueError otherwise. A
    user module (`models_from`) is loaded first, so the names it registers are known."""
    if params.get(user_code.PARAM):
        user_code.load(params[user_code.PARAM])
    for key in ("eval_sets", "sets"):
        if isinstance(params.get(key), str):
            check_sets([spec for spec, _ in parse_sets(params[key]).values()])
    if params.get("valid"):
        specs = valid_sets(params["valid"])  # each 'split:<share>' a share in (0, 1), at most one, names apart
        if params.get("monitor"):
            deg = params.get("valid_degradation") or params.get("degradation")
            preset = deg.get("preset") if isinstance(deg, dict) else deg
            check_monitor(params["monitor"], specs, None if params.get("valid_lr") else preset)
    if "model" in params and params["model"]:
        model_entrypoint(params["model"])
    if params.get("gan") and "disc" in params:
        if params["disc"] not in MODELS or not params["disc"].startswith("disc_"):
            raise KeyError(f"unknown discriminator {params['disc']!r}; known: "
                           f"{', '.join(n for n in MODELS if n.startswith('disc_'))}")
    if "loss" in params:
        parse_loss(params["loss"])
    if "schedule" in params:
        SCHEDULES[params["schedule"]]
    if "opt" in params and params["opt"] not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {params['opt']!r}; accepted: {', '.join(OPTIMIZERS.names())}")
    if "degradation" in params and "model" in params:  # the train notebook: its task must build at its scale
        if not isinstance(params.get("scale"), int) or params["scale"] < 1:
            raise ValueError(f"parameter 'scale' must be an integer >= 1 for training, got {params.get('scale')!r}")
        build(params["degradation"], scale=params["scale"], **(params.get("degradation_kwargs") or {}))
        if params.get("valid_degradation"):
            build(params["valid_degradation"], scale=params["scale"])
    return params


def check_monitor(monitor: str, specs: list[str], preset: str | None = None) -> str:
    """`monitor` if it names a history column of these validation sets (it picks the best checkpoint); ValueError naming
    the accepted ones otherwise. A further set's column carries '@<preset>' when its inputs are not the benchmark's
    bicubic (`lab.data.extra_label`, which knows once the data is open: both forms pass here)."""
    labels = [set_label(v) for v in specs[1:]]
    if isinstance(preset, str) and preset not in ("", "bicubic"):
        labels += [f"{label}@{preset}" for label in labels]
    accepted = ["valid_loss", *SET_METRICS, *(f"{label}_{m}" for label in labels for m in SET_METRICS)]
    if monitor not in accepted:
        raise ValueError(f"monitor {monitor!r} is not a validation column of valid; accepted: {', '.join(accepted)}")
    return monitor
