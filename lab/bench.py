"""`lab bench`: throughput and quality benchmarks, each comparison measured side by side in one process.

Shared machines are noisy, so alternatives (fp32 vs bf16, degradation vs training step) are interleaved and
reported as medians and ratios rather than as absolute targets.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch

from lab.models import create


def _median_ms(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, float]:
    """Median wall time (ms) of each callable, interleaved round by round so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def train_step_fn(model_name: str = "edsr_baseline", scale: int = 2, batch: int = 16, patch: int = 48,
                  amp: str = "fp32", seed: int = 0, **model_kw: Any) -> Callable[[], float]:
    """A closure running one L1 training step (forward, backward, Adam) on random data; returns the loss."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = create(model_name, scale=scale, **model_kw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    c = getattr(model, "in_ch", 3)
    x = torch.rand(batch, c, patch, patch, generator=g)
    y = torch.rand(batch, getattr(model, "out_ch", c), patch * scale, patch * scale, generator=g)

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = model(x)
        loss = (out.float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    return step


def bench_train(model_name: str = "edsr_baseline", batch: int = 16, patch: int = 48, scale: int = 2,
                repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Training-step time in fp32 and under bf16 autocast (CPU), interleaved; returns ms and the speed-up."""
    fns = {amp: train_step_fn(model_name, scale, batch, patch, amp) for amp in ("fp32", "bf16")}
    ms = _median_ms(fns, repeats, warmup)
    return {"model": model_name, "batch": batch, "patch": patch, "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"],
            "bf16_speedup": ms["fp32"] / ms["bf16"]}


def bench_degradation(presets: Sequence[str] = ("bicubic", "second_order"), batch: int = 16, patch: int = 48,
                      scale: int = 2, repeats: int = 5, warmup: int = 1,
                      model_name: str = "edsr_baseline") -> list[dict[str, float]]:
    """Per-batch degradation time of each preset beside a bf16 training step, as a fraction of that step."""
    import numpy as np

    from lab.degrade import build

    hr = torch.rand(batch, 3, patch * scale, patch * scale, generator=torch.Generator().manual_seed(0))
    fns: dict[str, Callable[[], Any]] = {"train_step": train_step_fn(model_name, scale, batch, patch, "bf16")}
    for name in presets:
        pipe, rng = build(name, scale=scale), np.random.default_rng(0)
        # the data loader degrades patch by patch, so time it the same way
        fns[name] = lambda pipe=pipe, rng=rng: [pipe(hr[i:i + 1], rng) for i in range(batch)]
    ms = _median_ms(fns, repeats, warmup)
    step = ms.pop("train_step")
    return [{"preset": k, "batch_ms": v, "train_step_ms": step, "fraction_of_step": v / step} for k, v in ms.items()]


def bench_models(names: Sequence[str], input_size: Sequence[int] = (1, 3, 64, 64), repeats: int = 3,
                 **create_kw: Any) -> list[dict[str, Any]]:
    """Params, GFLOPs and forward ms (fp32, bf16) of registered models at one LR input size."""
    from lab.models.profile import profile

    rows = []
    for n in names:
        m = create(n, **create_kw)
        size = (input_size[0], getattr(m, "in_ch", input_size[1]), *input_size[2:])
        p = profile(m, size, repeats=repeats, warmup=1)
        rows.append({"model": n, "input": "x".join(map(str, size)), **{k: p[k] for k in p if not isinstance(p[k], dict)}})
    return rows


def bench_bicubic_set5() -> list[dict[str, float]]:
    """MATLAB-bicubic PSNR-Y/SSIM-Y on Set5 x2/x3/x4 (published: 33.66/30.39/28.42 dB), if the data is found."""
    from lab.evaluate import evaluate_benchmark

    out = []
    for s in (2, 3, 4):
        df = evaluate_benchmark(None, "Set5", s, progress=False)
        out.append({"scale": s, "bicubic_psnr_y": float(df["bicubic_psnr_y"].mean()),
                    "bicubic_ssim_y": float(df["bicubic_ssim_y"].mean())})
    return out
