"""`lab bench`: the performance goals P1-P6 measured in one process, one summary table, `bench.json`.

- P1 `steps`: the Learner (the train notebook's default callbacks) vs a hand-written loop, fp32 and bf16.
- P2 `steps`: the training step's GFLOP/s as a fraction of a large 3x3 conv's, and bf16 over fp32 steps/s.
- P3 `data`: the data wait per batch vs the step, `bicubic` and `second_order`, without and with workers.
- P4 `quality`: the demo's PSNR-Y per training minute (Set5 x2 when found), a curve in a PNG.
- P5 `tiles`: tiled vs untiled inference of a 3840x2160 input (difference, time, peak memory per tile size).
- P6 `ledger_scale`: the ledger's load time over 10,000 realistic runs; papermill's overhead per run.
Every comparison runs its sides interleaved in this process (shared machines are noisy: medians of paired rounds,
not absolute targets). Other runs on the machine share the cores: the bench refuses to start while one is active
unless forced, and records the threads, load and active runs it measured with. `quick=True` shrinks every section
(under 2 minutes on 2 quiet cores). Extras, not run by default: `models` (cost profiles of a model zoo), `bicubic`
(Set5's bicubic baseline), `data` (a DIV2K-sized set on disk: memory and data wait with the disk cache), `levers`
(the demo's step eager vs channels_last vs torch.compile), `export` (EDSR-baseline x2 in onnxruntime vs PyTorch on a
real 480x270 picture: difference and images/s).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from lab.bench import data, export, ledger_scale, quality, steps, tiles
from lab.bench.common import Sizes, active_runs, machine
from lab.bench.summary import summarise
from lab.evaluate import evaluate_benchmark
from lab.models import create
from lab.models.profile import profile
from lab.utils import atomic_write_json, thread_env, usable_cores

GOALS = ("P1", "P2", "P3", "P4", "P5", "P6")
EXTRAS = ("models", "bicubic", "data", "levers", "export")
DEFAULT_MODELS = ("srcnn", "fsrcnn", "vdsr", "edsr_baseline", "srresnet", "imdn", "imdn_rtc", "imdn_dw", "rdn",
                  "rcan", "drln_slim")


class OtherRunsActive(RuntimeError):
    """Raised when runs share the cores the bench would measure on (`force=True` measures anyway)."""


def parse_sections(spec: str | Sequence[str] | None) -> list[str]:
    """Section names from 'P1,P4' (case-insensitive); default: P1-P6. ValueError names an unknown one."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or GOALS)
    out = []
    for raw in (s.strip() for s in items if s.strip()):
        name = raw.upper() if raw.upper() in GOALS else raw.lower()
        if name not in GOALS + EXTRAS:
            raise ValueError(f"unknown bench section {raw!r}; accepted: {', '.join(GOALS + EXTRAS)}")
        if name not in out:
            out.append(name)
    return out or list(GOALS)


def bench_models(names: Sequence[str] = DEFAULT_MODELS, size: int = 64, repeats: int = 3) -> list[dict[str, Any]]:
    """Params, GFLOPs and forward ms (fp32, bf16) of registered models at one LR input size."""
    rows = []
    for n in names:
        m = create(n, scale=2)
        p = profile(m, (1, getattr(m, "in_ch", 3), size, size), repeats=repeats, warmup=1)
        rows.append({"model": n, **{k: v for k, v in p.items() if k not in ("model", "input_size")
                                    and not isinstance(v, dict)}})
    return rows


def bench_bicubic_set5() -> list[dict[str, float]]:
    """MATLAB-bicubic PSNR-Y/SSIM-Y on Set5 x2/x3/x4 (published: 33.66/30.39/28.42 dB), if the data is found."""
    out = []
    for s in (2, 3, 4):
        df = evaluate_benchmark(None, "Set5", s, progress=False)
        out.append({"scale": s, "bicubic_psnr_y": float(df["baseline_psnr_y"].mean()),
                    "bicubic_ssim_y": float(df["baseline_ssim_y"].mean())})
    return out


def run_bench(sections: Sequence[str] = GOALS, *, quick: bool = False, png: str | os.PathLike = "bench_p4.png",
              force: bool = False, runs_root: str | os.PathLike | None = None, models: Sequence[str] = DEFAULT_MODELS,
              data_images: int = 800, sizes: Sizes | None = None, threads: int = 0,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """Run the named sections (see `parse_sections`) and return {machine, sizes, results, summary, seconds};
    `sizes` replaces what `quick` picks (tests run every section in seconds with tiny ones). `threads` > 0: torch
    threads of this process and of the notebook kernels it starts (P4, P6), set for the rest of the process.

    Refuses (OtherRunsActive) while other runs are active in the runs folder, unless `force`; a section that
    fails is recorded with its error and the others still run. `runs_root` keeps P4's run there (default: a
    temporary folder)."""
    sections = parse_sections(sections)
    active = active_runs()
    if active and not force:
        raise OtherRunsActive(f"{len(active)} other run(s) active ({', '.join(active[:5])}): they share the cores "
                              "every timing uses; wait for them, or pass --force to measure anyway (the results "
                              "then record them)")
    if active:
        log(f"WARNING: measuring while {len(active)} other run(s) are active ({', '.join(active[:5])}): timings "
            "are not comparable")
    if threads:
        torch.set_num_threads(threads)
        os.environ.update(thread_env(threads))  # the kernels P4 and P6 start read them
    info = machine()
    if info["loadavg_1m"] > 0.5 * usable_cores():
        log(f"warning: load average {info['loadavg_1m']} on {usable_cores()} cores: the machine is busy; interleaved "
            "ratios hold up, absolute times will not")
    sizes = sizes or Sizes.make(quick)
    jobs: dict[str, Callable[[], Any]] = {
        "P1": lambda: steps.bench_learner(sizes), "P2": lambda: steps.bench_flops(sizes),
        "P3": lambda: data.bench_data_cost(sizes), "P4": lambda: quality.bench_quality(sizes, png, runs_root),
        "P5": lambda: tiles.bench_tiles(sizes),
        "P6": lambda: {"ledger": ledger_scale.bench_ledger(sizes),
                       "papermill": ledger_scale.bench_papermill(sizes.papermill_repeats)},
        "models": lambda: bench_models(models), "bicubic": bench_bicubic_set5,
        "levers": lambda: steps.bench_step_levers(sizes), "export": lambda: export.bench_export(sizes),
        "data": lambda: data.bench_data(data_images, counts=tuple(c for c in (100, 400) if c < data_images)
                                        + (data_images,)),
    }
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    summary: list[dict[str, str]] = []
    for name in sections:
        log(f"lab bench: {name} ...")
        t = time.perf_counter()
        try:
            results[name] = jobs[name]()
        except Exception as e:  # noqa: BLE001  a failing section must not cost the others their measurements
            results[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
        seconds[name] = round(time.perf_counter() - t, 1)
        log(f"lab bench: {name} took {seconds[name]:.0f} s")
        summary += summarise(name, results[name])  # extras without rows of their own show only when they fail
    info["other_runs_active_after"] = active_runs()
    info["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return {"machine": info, "quick": quick, "sizes": asdict(sizes), "results": results, "summary": summary,
            "seconds": seconds}


def table(report: dict[str, Any]) -> str:
    """The summary table of a `run_bench` report as text, with a line on the conditions measured in."""
    m = report["machine"]
    head = (f"lab bench{' --quick' if report['quick'] else ''}: {m['cpu']}, {m['usable_cores']} cores, "
            f"{m['torch_threads']} torch threads, load {m['loadavg_1m']} -> {m['loadavg_1m_after']}, bf16 "
            f"{'native' if m['fast_bf16'] else 'not native'}"
            + (f", OTHER RUNS ACTIVE: {', '.join(m['other_runs_active'])}" if m["other_runs_active"] else ""))
    if not report["summary"]:
        return head
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        body = pd.DataFrame(report["summary"]).to_string(index=False, justify="left")
    return f"{head}\n{body}"


def write_report(report: dict[str, Any], path: str | os.PathLike = "bench.json") -> Path:
    """Write the report as JSON (atomically)."""
    return atomic_write_json(Path(path), report)
