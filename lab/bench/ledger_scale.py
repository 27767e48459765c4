"""P6 of `lab bench`: the ledger's load time over 10,000 realistic runs, and papermill's fixed cost per run.

One finished run is written through `lab.runs` the way a train run writes itself (params, meta, status, a history
of 300 epochs, metrics, a cost profile, data and degradation records, notes, the summary); the others are
byte-for-byte copies of its files with the id, name, date, learning rate, seed and scores varied, written plainly
(no fsync per file, as a run's own atomic writes do), their summaries rewritten: a fixture for a timing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import papermill as pm

from lab import ledger
from lab.bench.common import Sizes
from lab.execute import kernel_for
from lab.params import NOTEBOOKS_DIR, notebook_defaults
from lab.runs import JSON_FILES, Run, create

VARIED = ("meta", "params", "metrics", "status")  # the files each copy rewrites; the rest are copied as they are


def _history(epochs: int, steps_per_epoch: int = 22) -> list[dict[str, Any]]:
    """A per-epoch history shaped like RecordHistory's, PSNR rising and losses falling."""
    return [{"train_loss": 0.05 / (1 + e / 30), "valid_loss": 0.045 / (1 + e / 30), "psnr_y": 30 + 6 * e / epochs,
             "ssim_y": 0.9 + 0.05 * e / epochs, "epoch": e, "step": (e + 1) * steps_per_epoch,
             "lr": 1e-3 * (1 - e / epochs), "elapsed_s": 14.2 * (e + 1), "train_s": 13.1 * (e + 1)}
            for e in range(epochs)]


def template_run(root: str | os.PathLike, epochs: int = 300) -> Run:
    """A finished train run written through lab.runs, its files the sizes a real run writes."""
    params = {**notebook_defaults("train"), "epochs": epochs, "notes": "ledger scale fixture: EDSR-baseline x2, L1"}
    run = create(params, name="edsr-l1", root=root, notebook="train.ipynb")
    run.update_meta(notebook_path=str(NOTEBOOKS_DIR / "train.ipynb"), notebook_hash="0" * 16)
    run.write_json("profile", {"model": "edsr_baseline", "input_size": [1, 3, 64, 64], "device": "cpu",
                               "threads": 2, "params": 1369859, "param_mb": 5.23, "gflops": 11.22, "gmacs": 5.61,
                               "ms_fp32": 152.1, "mem_mb_fp32": 61.0, "ms_bf16": 70.3, "mem_mb_bf16": 35.2,
                               "loadavg_1m": 1.1, "other_runs_active": [], "busy": False})
    run.write_json("degradation", {"preset": "bicubic", "scale": 2, "ops": [{"op": "bicubic_down", "scale": 2}]})
    run.write_json("data", {"budget": {"steps": epochs * 22, "steps_per_epoch": 22, "save_every": 22},
                            "sources": [{"spec": "builtin", "images": 11, "weight": 1.0}],
                            "valid_degradation": {"preset": "bicubic", "scale": 2}})
    run.write_json("history", _history(epochs))
    run.add_note("sharper roof lines than the baseline; slight ringing on text", tags=["baseline"])
    run.add_note(verdict="chosen")
    metrics = {"params": 1369859, "gflops": 11.22, "forward_ms": 152.1, "train_minutes": 70.5,
               "train_steps": epochs * 22}
    for s in ("valid", "set5"):
        metrics.update({f"{s}_psnr_y": 36.1, f"{s}_ssim_y": 0.951, f"{s}_baseline_psnr_y": 33.66,
                        f"{s}_baseline_ssim_y": 0.930, f"{s}_gain_psnr_y": 2.44, f"{s}_baseline": "bicubic"})
    run.finish(metrics)
    return run


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")  # the format of lab.utils.atomic_write_json


def copy_runs(template: Run, n: int) -> None:
    """Runs 2..n beside `template`: its files copied, ids, names, dates, lr, seed and scores varied."""
    root = template.dir.parent
    files = [p for p in template.dir.rglob("*") if p.is_file()]
    varied = {JSON_FILES[k]: k for k in VARIED}
    base = {k: template.read(k) for k in VARIED}
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(2, n + 1):
        name = f"{i:04d}-edsr-l1-{i % 7}"
        d = root / name
        for p in files:
            (d / p.relative_to(template.dir)).parent.mkdir(parents=True, exist_ok=True)
            if p.name not in varied:
                shutil.copyfile(p, d / p.relative_to(template.dir))
        when = (t0 + dt.timedelta(minutes=75 * i)).isoformat()
        psnr = 35.0 + (i * 7919 % 1000) / 500
        objs = {"meta": {**base["meta"], "id": i, "name": name, "title": f"edsr-l1-{i % 7}", "created": when},
                "params": {**base["params"], "lr": (1e-3, 5e-4, 2e-4)[i % 3], "seed": i % 5},
                "metrics": {**base["metrics"], "valid_psnr_y": psnr, "set5_psnr_y": psnr + 0.3,
                            "set5_gain_psnr_y": psnr + 0.3 - 33.66},
                "status": {**base["status"], "started": when, "updated": when, "finished": when}}
        for k, obj in objs.items():
            _dump(d / JSON_FILES[k], obj)
    for i in range(2, n + 1):  # as a run's own writes leave it; after all the copies, so no summary waits for the clock
        Run(root / f"{i:04d}-edsr-l1-{i % 7}").write_summary()


def write_synthetic_runs(root: str | os.PathLike, n: int) -> Path:
    """`n` minimal finished run directories (params, meta, status, metrics; no history) for ledger tests, written
    plainly (no temp file + fsync per file): scaffolding."""
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


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


_FRESH = """import sys, time
from lab import ledger
t = time.perf_counter()
ledger.load(sys.argv[1], warn=False, cache=sys.argv[2])
print(time.perf_counter() - t)
"""


def fresh_load_s(runs_root: str | os.PathLike, repeats: int = 3) -> float:
    """Seconds of the ledger's first load in a new Python process, imports done and no cache (median of
    `repeats`): what opening the ledger in a new kernel costs the first time."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lab-bench-cache-") as cache:
            out = subprocess.run([sys.executable, "-c", _FRESH, str(runs_root), cache], check=True,
                                 capture_output=True, text=True)
            times.append(float(out.stdout.split()[-1]))
    return statistics.median(times)


def bench_ledger(sizes: Sizes) -> dict[str, Any]:
    """P6a: seconds to load `sizes.ledger_runs` realistic runs into the ledger: in this process the reader before
    summaries (every run's files, no cache: `old_s`), the first load with no cache (summaries only, each into a new
    cache: `first_s`, median of three) and a warm one (the cache of finished rows, every run's stamp checked:
    `warm_s`, median of three); and the first load in a new process (`fresh_s`, median of three). The file cache
    of the OS is warm for all of them (the runs were just written, and flushed to disk before any timing): a cold
    read after a reboot is slower."""
    with tempfile.TemporaryDirectory(prefix="lab-bench-ledger-") as tmp:
        t = time.perf_counter()
        runs_root = Path(tmp) / "runs"
        template = template_run(runs_root, sizes.ledger_epochs)
        copy_runs(template, sizes.ledger_runs)
        made = time.perf_counter() - t
        run_bytes = sum(p.stat().st_size for p in template.dir.rglob("*") if p.is_file())
        os.sync()  # the fixture's writeback is not the ledger's read: flushed before any timing
        caches = [Path(tmp) / f"cache{i}" for i in range(3)]
        unused = iter(caches)
        old, df_old = _timed(lambda: ledger.load(runs_root, warn=False, cache=False, summaries=False), 1)
        first, df = _timed(lambda: ledger.load(runs_root, warn=False, cache=next(unused)), len(caches))
        cache = caches[-1]
        time.sleep(ledger.RACY_S)  # rows changed within RACY_S of a load are not kept: this fixture's all were
        ledger.load(runs_root, warn=False, cache=cache)
        warm, df_warm = _timed(lambda: ledger.load(runs_root, warn=False, cache=cache), 3)
        same = df_old.drop(columns="heartbeat_age_s").equals(df_warm.drop(columns="heartbeat_age_s"))
        fresh = fresh_load_s(runs_root)
    return {"runs": len(df), "epochs_per_run": sizes.ledger_epochs, "kb_per_run": run_bytes / 1024,
            "fixture_s": made, "old_s": old, "first_s": first, "warm_s": warm, "fresh_s": fresh,
            "ms_per_run": warm / max(1, len(df)) * 1e3, "same_as_old": same}


def bench_papermill(repeats: int = 3) -> dict[str, Any]:
    """P6b: papermill's fixed cost per run: seconds from starting an execution to its first cell running, and the
    whole execution of a one-cell notebook, with the lab's kernel (median of `repeats`)."""
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
