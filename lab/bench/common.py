"""What every `lab bench` section shares: interleaved timing, the machine's state (threads, load, bf16 support,
other runs), the demo's parameters and the quick/full sizes."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from lab.learner import cpu_has_fast_bf16
from lab.runs import runs_dir, scan
from lab.sweep import load_spec
from lab.utils import usable_cores

DEMO_SPEC = "demo"  # notebooks/sweeps/demo.yaml: the demo's parameters (its `base`)
DEMO_FALLBACK = {"epochs": 16, "repeat": 32}  # the Makefile's demo before the spec existed


@dataclass(frozen=True)
class Sizes:
    """How much each section measures: the full bench, or `--quick` (every section shrunk, under 2 minutes)."""

    quick: bool = False
    batch: int = 16  # training batch of the timed steps (the demo's)
    patch: int = 48  # LR patch side of the timed steps (the demo's)
    seconds: float = 90.0  # time limit of each interleaved comparison
    learner_seconds: float = 300.0  # P1's limit: its rounds are two 3 s steps a side, and 8 rounds left it unsettled
    rounds: int = 40  # at most this many rounds of each comparison
    ledger_runs: int = 10_000  # runs the ledger loads
    ledger_epochs: int = 300  # history epochs of each of them
    papermill_repeats: int = 3  # one-cell notebook executions timed
    data_batches: int = 20  # batches timed per data loader configuration
    tile_seconds: float = 120.0  # time limit of each tiled/untiled inference measurement
    frame: tuple[int, int] = (2160, 3840)  # LR input of the tiled inference (H, W)
    tile_models: tuple[str, ...] = ("edsr_baseline", "rcan")  # models of the tiled inference
    model_kw: dict[str, Any] = field(default_factory=dict)  # overrides of the models' sizes (tests: tiny ones)
    conv_size: int = 256  # side of the large conv whose rate is P2's peak
    quality_steps: int = 0  # P4's training steps; 0: the demo's own budget

    @classmethod
    def make(cls, quick: bool) -> "Sizes":
        """The full bench's sizes, or `--quick`'s."""
        if not quick:
            return cls()
        return cls(quick=True, batch=8, patch=32, seconds=8.0, learner_seconds=8.0, rounds=12, ledger_runs=500,
                   ledger_epochs=300, papermill_repeats=1, data_batches=3, tile_seconds=6.0, quality_steps=6,
                   tile_models=("edsr_baseline",))  # RCAN's smallest fair comparison alone takes ~30 s on 2 cores


def interleave(fns: dict[str, Callable[[], Any]], *, rounds: int, seconds: float, warmup: int = 1,
               min_rounds: int = 3) -> dict[str, list[float]]:
    """Wall seconds of each callable per round, called one after the other round after round (the order rotating
    each round) so load bursts and drift hit all alike; `warmup` untimed rounds first, then up to `rounds` rounds,
    fewer when `seconds` have passed (never fewer than `min_rounds`)."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    t_start = time.perf_counter()
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t)
        if r + 1 >= min_rounds and time.perf_counter() - t_start > seconds:
            break
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of num[i] / den[i] (paired rounds, so a burst that slows one round cancels out)."""
    return statistics.median(a / b for a, b in zip(num, den))


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_is_fast() -> bool:
    """Whether bf16 autocast can pay on this CPU (AMX / AVX512-BF16; elsewhere oneDNN emulates it, many times
    slower than fp32, and the train notebook's amp='auto' trains in fp32). The bench measures on the CPU."""
    return cpu_has_fast_bf16()


def auto_amp() -> str:
    """The precision the train notebook's amp='auto' trains in here: 'bf16' where it is native, else 'none' (fp32)."""
    return "bf16" if bf16_is_fast() else "none"


TRAINING_COMMANDS = ("run", "sweep", "rerun", "resume")  # `lab` commands that train


def lab_processes() -> list[str]:
    """Other processes on this machine running a notebook or a training command of the lab, wherever their runs
    folder is (psutil: Linux, macOS, Windows): '<pid> <command line>'."""
    import psutil

    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info.get("cmdline") or []  # None when access is denied
        if proc.info["pid"] == os.getpid() or not argv:
            continue
        lab_cmd = any(a.endswith("/lab") or a == "lab" for a in argv[:2]) and any(
            a in TRAINING_COMMANDS for a in argv[1:3])
        if "lab.execute" in argv or lab_cmd:
            out.append(f"{proc.info['pid']} {' '.join(a.rsplit('/', 1)[-1] for a in argv[1:] if a)[:70]}")
    return out


def active_runs(root: str | os.PathLike | None = None) -> list[str]:
    """Runs under the runs folder whose process is alive, and other lab processes training or executing a notebook
    on this machine (runs in other folders): they share the cores a timing uses."""
    return sorted({r.name for r in scan(runs_dir(root)) if r.effective_status() == "running"}) + [
        f"process {p}" for p in lab_processes()]


def machine(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The conditions of a measurement: CPU, cores, torch threads, load, bf16 support, other runs active."""
    return {"cpu": cpu_name(), "usable_cores": usable_cores(), "torch_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "loadavg_1m": round(os.getloadavg()[0], 2),
            "fast_bf16": bf16_is_fast(), "torch": torch.__version__, "other_runs_active": active_runs(root)}


def demo_params() -> tuple[dict[str, Any], str]:
    """The parameters the demo sets over the train notebook's defaults, and where they came from."""
    try:
        return dict(load_spec(DEMO_SPEC)["base"]), f"notebooks/sweeps/{DEMO_SPEC}.yaml"
    except FileNotFoundError:
        return dict(DEMO_FALLBACK), "the Makefile's demo (-p epochs 16 -p repeat 32)"
