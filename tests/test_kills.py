"""Kills lose nothing: `kill -9` of a run at a random moment (the runner, its kernel, or both; times drawn from fixed
seeds so a failure reproduces) leaves every JSON parseable and every checkpoint loadable, the ledger shows the run
as no longer running within a few seconds, and `lab resume` finishes it with the uninterrupted run's results."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab import ledger, runs
from lab.execute import run_notebook
from lab.models import read_checkpoint

pytestmark = pytest.mark.slow

TINY = {"model": "edsr_baseline", "model_kwargs": "{num_block: 1, num_feat: 8}", "data": "builtin:astronaut",
        "patch_size": "12", "batch_size": "4", "steps": "10", "valid_every": "2", "valid_max_size": "32",
        "eval_sets": "", "profile_size": "0", "seed": "3", "num_workers": "0"}
TRIALS = int(os.environ.get("LAB_KILL_TRIALS", "10"))
SETTLE_S = 10.0  # the bound within which a killed run must stop reading 'running'


def _cli(*args, root, wait=True):
    cmd = [sys.executable, "-m", "lab.cli", *args]
    env = {**os.environ, "LAB_RUNS_DIR": str(root)}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _check_intact(run: runs.Run) -> None:
    for p in run.dir.rglob("*.json"):
        json.loads(p.read_text())  # every JSON whole
    for p in run.checkpoints():
        read_checkpoint(p)  # every checkpoint loadable


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = run_notebook("train", TINY, name="whole", root=tmp_path_factory.mktemp("ref"))
    assert run.status == "done", run.error
    return run.metrics["valid_psnr_y"], [h["psnr_y"] for h in run.history]


def _trial(trial: int, tmp_path, reference) -> tuple:
    """One seeded kill: start a run, kill -9 the runner, its kernel or both at a drawn moment, check that nothing is
    lost, resume it and compare with the uninterrupted run; returns (trial, target, delay, outcome)."""
    args = [x for k, v in TINY.items() for x in ("-p", k, v)]
    rng = random.Random(1000 + trial)
    root = tmp_path / f"t{trial}"
    proc = _cli("run", "train", *args, "--name", "killed", root=root, wait=False)
    target = rng.choice(["runner", "kernel", "both"])
    # a third of the kills at any moment of start-up, the rest during training (after k epochs + a jitter),
    # where there is most to lose
    if rng.random() < 1 / 3:
        delay = rng.uniform(1.0, 30.0)
        time.sleep(delay)
    else:
        k, delay = rng.randint(0, 3), rng.uniform(0.0, 0.4)
        while proc.poll() is None and not (runs.scan(root) and len(runs.scan(root)[0].history) > k):
            time.sleep(0.05)
        time.sleep(delay)
        delay = float(f"{k}.{int(delay * 10)}")  # recorded as 'epochs.tenths'
    kernel = None
    if root.is_dir() and runs.scan(root):
        pid = runs.scan(root)[0].status_record.get("pid")
        kernel = pid if pid and pid != proc.pid else None
    for victim in ((proc.pid,) if target == "runner" or kernel is None else
                   (kernel,) if target == "kernel" else (kernel, proc.pid)):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:  # it had already finished
            pass
    deadline = time.monotonic() + SETTLE_S
    while runs.scan(root) and runs.scan(root)[0].effective_status() == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.wait(timeout=60)
    if not runs.scan(root):  # killed before the run directory was made: nothing to lose
        return trial, target, round(delay, 1), "no run yet"
    run = runs.scan(root)[0]
    status = run.effective_status()
    assert status != "running", f"trial {trial}: still 'running' {SETTLE_S} s after kill -9 of the {target}"
    _check_intact(run)
    assert len(ledger.load(root)) == 1, "the ledger loads the killed run"
    if status != "done":
        r = _cli("resume", str(run.id), root=root)
        if not run.checkpoint("last").is_file():
            assert r.returncode == 2, r.stderr
            assert "has no checkpoint" in r.stderr, r.stderr
            return trial, target, round(delay, 1), f"{status}, no checkpoint yet: resume refused"
        assert r.returncode == 0, r.stderr
    run = runs.Run(run.dir)
    assert run.status == "done", run.error
    assert run.metrics["valid_psnr_y"] == pytest.approx(reference[0], abs=1e-9), f"trial {trial}"
    assert [h["psnr_y"] for h in run.history] == pytest.approx(reference[1], abs=1e-9)
    return trial, target, round(delay, 1), f"{status} -> resumed to done" if status != "done" else "done before the kill"


def test_randomised_kills_lose_nothing_and_resume_exactly(tmp_path, reference):
    # two trials at a time: most of a trial is single-threaded start-up (imports, kernel) and waiting, so two
    # overlap on two cores; each trial has its own runs folder and its own seeded kill moment
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda t: _trial(t, tmp_path, reference), range(TRIALS)))
    print("\n".join(map(str, outcomes)))
    assert sum("resumed" in o[3] for o in outcomes) >= TRIALS // 3, f"too few kills landed mid-run: {outcomes}"
