"""Cores are shared explicitly: a local sweep of N workers gives each run its share of the cores as torch/OpenMP
threads (in its process environment and its meta); EDSR's optional bicubic skip keeps the published default."""

from __future__ import annotations

import os

import pytest
import torch

from lab import execute, sweep, utils
from lab.models import create


def test_share_cores_sets_each_jobs_threads(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    jobs = [{"meta": {"sweep": {"name": "s"}}} for _ in range(3)]
    assert sweep.share_cores(jobs, 2) == 4
    assert all(j["threads"] == 4 and j["meta"]["sweep"]["threads"] == 4 for j in jobs)
    assert sweep.share_cores(jobs, 16) == 1, "never fewer than one thread"
    assert utils.thread_env(3) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}


def test_a_jobs_threads_reach_its_process(monkeypatch, tmp_path):
    seen = {}

    class Captured(Exception):
        pass

    real = execute.subprocess.Popen

    def fake_popen(cmd, *a, env=None, **kw):
        if "lab.execute" not in cmd:  # e.g. git, asked for the run's provenance
            return real(cmd, *a, env=env, **kw)
        seen.update(env)
        raise Captured

    monkeypatch.setattr(execute.subprocess, "Popen", fake_popen)
    job = execute.make_job(execute.notebook_path("train"), {"epochs": 1}, root=tmp_path, threads=1)
    with pytest.raises(Captured):
        execute.run_job(job)
    assert seen["OMP_NUM_THREADS"] == "1"
    assert seen["MKL_NUM_THREADS"] == "1"


def test_edsr_bicubic_skip_is_optional_and_checked():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 12)
    plain = create("edsr_baseline", scale=2, in_ch=1, out_ch=1, num_block=1, num_feat=8)
    skip = create("edsr_baseline", scale=2, in_ch=1, out_ch=1, num_block=1, num_feat=8, skip="bicubic")
    skip.load_state_dict(plain.state_dict())
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(skip(x) - plain(x), up - plain.mean, atol=1e-6)
    assert create("edsr_baseline").skip == "none", "the paper's EDSR has no bicubic skip"
    with pytest.raises(ValueError, match="skip"):
        create("edsr_baseline", skip="nearest")
