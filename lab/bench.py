"""`lab bench`: throughput and quality benchmarks, each comparison measured side by side in one process.

Shared machines are noisy, so alternatives (fp32 vs bf16, degradation vs training step) are interleaved and
reported as medians and ratios rather than as absolute targets.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from lab import ledger
from lab.degrade import build
from lab.evaluate import evaluate_benchmark
from lab.execute import kernel_for
from lab.models import create
from lab.models.profile import profile
from lab.params import NOTEBOOKS_DIR
from lab.runs import JSON_FILES


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
        return loss.item()

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
    rows = []
    for n in names:
        m = create(n, **create_kw)
        size = (input_size[0], getattr(m, "in_ch", input_size[1]), *input_size[2:])
        p = profile(m, size, repeats=repeats, warmup=1)
        rows.append({"model": n, "input": "x".join(map(str, size)),
                     **{k: v for k, v in p.items() if k not in ("model", "input_size") and not isinstance(v, dict)}})
    return rows


def bench_bicubic_set5() -> list[dict[str, float]]:
    """MATLAB-bicubic PSNR-Y/SSIM-Y on Set5 x2/x3/x4 (published: 33.66/30.39/28.42 dB), if the data is found."""
    out = []
    for s in (2, 3, 4):
        df = evaluate_benchmark(None, "Set5", s, progress=False)
        out.append({"scale": s, "bicubic_psnr_y": float(df["baseline_psnr_y"].mean()),
                    "bicubic_ssim_y": float(df["baseline_ssim_y"].mean())})
    return out


def write_synthetic_runs(root: str | Path, n: int) -> Path:
    """`n` small finished run directories (params, meta, status, metrics; no training) for ledger scale tests.

    Written plainly (no temp file + fsync per file, as a run's own writes do): this is scaffolding for a timing.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        d = root / f"{i:05d}-synthetic"
        d.mkdir(exist_ok=True)
        files = {"meta": {"id": i, "created": "2026-01-01T00:00:00+00:00", "notebook": "train.ipynb"},
                 "params": {"model": "edsr_baseline", "lr": 1e-3 * (1 + i % 3), "seed": i},
                 "status": {"status": "done", "started": "2026-01-01T00:00:00+00:00",
                            "finished": "2026-01-01T00:05:00+00:00"},
                 "metrics": {"valid_psnr_y": 30.0 + i / (n + 1)}}
        for key, obj in files.items():
            (d / JSON_FILES[key]).write_text(json.dumps(obj))
    return root


def bench_ledger(n: int = 10_000, repeats: int = 3) -> dict[str, float]:
    """Seconds to load `n` synthetic run directories into the ledger: the first load, then the median warm one."""
    with tempfile.TemporaryDirectory(prefix="lab-bench-ledger-") as tmp:
        write_synthetic_runs(tmp, n)
        t = time.perf_counter()
        rows = len(ledger.load(tmp, warn=False))
        first = time.perf_counter() - t
        warm = []
        for _ in range(repeats):
            t = time.perf_counter()
            ledger.load(tmp, warn=False)
            warm.append(time.perf_counter() - t)
    return {"runs": rows, "first_s": first, "warm_s": statistics.median(warm)}


def bench_papermill(repeats: int = 3) -> dict[str, float]:
    """Papermill's fixed cost per run: seconds from starting an execution to its first cell running, and the whole
    execution of a one-cell notebook, with the lab's kernel (median of `repeats`)."""
    import datetime as dt
    import json
    import tempfile

    import papermill as pm

    kernel = kernel_for(NOTEBOOKS_DIR / "train.ipynb")
    nb = {"cells": [{"id": "p", "cell_type": "code", "execution_count": None, "metadata": {"tags": ["parameters"]},
                     "outputs": [], "source": "x = 1  # a parameter"},
                    {"id": "c", "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                     "source": "x + 1"}],
          "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    to_first, total = [], []
    with tempfile.TemporaryDirectory(prefix="lab-bench-pm-") as tmp:
        src, out = Path(tmp) / "one.ipynb", Path(tmp) / "out.ipynb"
        src.write_text(json.dumps(nb))
        for _ in range(repeats):
            t0 = dt.datetime.now(dt.timezone.utc)
            t = time.perf_counter()
            pm.execute_notebook(str(src), str(out), parameters={"x": 2}, kernel_name=kernel, progress_bar=False)
            total.append(time.perf_counter() - t)
            cells = json.loads(out.read_text())["cells"]
            first = dt.datetime.fromisoformat(cells[0]["metadata"]["papermill"]["start_time"].replace("Z", "+00:00"))
            to_first.append((first - t0).total_seconds())
    return {"kernel": kernel, "to_first_cell_s": statistics.median(to_first),
            "one_cell_run_s": statistics.median(total)}


BENCHES = ("train", "degrade", "models", "ledger", "papermill", "bicubic")
DEFAULT_MODELS = ("srcnn", "fsrcnn", "vdsr", "edsr_baseline", "srresnet", "imdn", "imdn_rtc", "imdn_dw", "rdn",
                  "rcan", "drln_slim")


def run_benches(what: Sequence[str] = BENCHES, *, model: str = "edsr_baseline", batch: int = 16, patch: int = 48,
                presets: Sequence[str] = ("bicubic", "second_order"), models: Sequence[str] = DEFAULT_MODELS,
                size: int = 64, ledger_runs: int = 10_000, repeats: int = 5) -> dict[str, Any]:
    """Run the named benchmarks (see BENCHES) with a progress bar; returns {name: rows}."""
    from tqdm.auto import tqdm

    bad = [w for w in what if w not in BENCHES]
    if bad:
        raise ValueError(f"unknown benchmark(s) {bad}; accepted: {', '.join(BENCHES)}")
    jobs: dict[str, Callable[[], Any]] = {
        "train": lambda: [bench_train(model, batch, patch, repeats=repeats)],
        "degrade": lambda: bench_degradation(presets, batch, patch, repeats=repeats, model_name=model),
        "models": lambda: bench_models(models, (1, 3, size, size), repeats=repeats, scale=2),
        "ledger": lambda: [bench_ledger(ledger_runs, repeats=3)],
        "papermill": lambda: [bench_papermill(3)],
        "bicubic": bench_bicubic_set5,
    }
    out = {}
    for w in tqdm(list(what), desc="lab bench", unit="bench"):
        out[w] = jobs[w]()
    return out
