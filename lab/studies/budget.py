"""A study's cost budget before anything trains: each arm's model profiled at the spec's `profile_size` and scale
(on the meta device: shapes only, no memory or compute), flagged when over the budget line."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import torch

from lab import models
from lab.models.profile import count_flops, count_params
from lab.studies.jobs import StudyJob

COSTS = {"cost.gflops": "gflops", "cost.params": "params"}


def budget_table(jobs: Sequence[StudyJob], spec: dict[str, Any]) -> pd.DataFrame | None:
    """One row per arm (params, GFLOPs at one `profile_size` LR input, over budget), or None when the study has no
    budget on GFLOPs or params, or no `profile_size`. `df.attrs['line']` says where the line is drawn."""
    budget = spec["study"].get("budget")
    if not budget or budget["cost"] not in COSTS:
        return None
    rows, seen = [], set()
    for job in jobs:
        p, arm = job.overrides, job.study.arm
        size, scale = int(p.get("profile_size") or 0), int(p.get("scale", 1))
        if arm in seen or not size or "model" not in p:
            continue
        seen.add(arm)
        with torch.device("meta"):
            model = models.create(p["model"], scale=scale, **(p.get("model_kwargs") or {})).eval()
        shape = (1, getattr(model, "in_ch", 3), size, size)
        cost = {"params": count_params(model), "gflops": count_flops(model, shape, device="meta") / 1e9}
        rows.append({"arm": arm, "model": p["model"], "params": cost["params"], "gflops": f"{cost['gflops']:.10g}",
                     "over budget": cost[COSTS[budget["cost"]]] > budget["max"]})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    df.attrs["line"] = (f"budget: {budget['max']} {COSTS[budget['cost']]} at one {size} x {size} LR input, x{scale} "
                        f"({int(df['over budget'].sum())} of {len(df)} arms over it)")
    return df
