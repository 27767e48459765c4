"""One notebook run in its own process: a whole-run timeout fails it with the cell it was in; bad params make no run;
a job is plain values (pickle, JSON) and its threads reach its process."""

import json
import pickle
from pathlib import Path

import pytest

from lab import execute, runs


@pytest.mark.slow
def test_job_timeout_and_invalid_params(quick, tmp_path):
    # the limit leaves the kernel ample time to start and reach the sleeping cell even on a loaded machine (4 s did
    # not, in a full suite on 2 cores); what is checked is where the run stood when the limit struck
    row = execute.run_job(execute.make_job(quick, {"sleep": 120}, root=tmp_path / "runs", timeout=20))
    assert row["status"] == "failed"
    assert row["error"].startswith("Timeout")
    assert row["error_cell"] == 3
    st = runs.Run(row["path"]).read("status.json")
    assert st["error"]["type"] == "Timeout"
    assert (Path(row["path"]) / "notebook.ipynb").is_file()
    bad = execute.run_job(execute.make_job(quick, {"nope": 1}, root=tmp_path / "runs"))
    assert bad["status"] == "invalid"
    assert "nope" in bad["error"]
    assert bad["path"] is None




@pytest.mark.slow
def test_execute_run_restores_the_environment_exactly(quick, tmp_path, monkeypatch):
    monkeypatch.setenv(execute.STATIC_ENV, "as before")
    monkeypatch.delenv(execute.RUNNER_ENV, raising=False)
    before = dict(execute.os.environ)
    run = execute.run_notebook(str(quick), {}, root=tmp_path / "runs")
    assert run.status == "done"
    assert dict(execute.os.environ) == before


def test_a_job_is_plain_values_that_round_trip_through_pickle_and_json(tmp_path):
    job = execute.make_job("train", {"steps": 3, "model_kwargs": {"num_feat": 8}}, name="t", root=tmp_path / "runs",
                           timeout=60, meta={"sweep": {"name": "s", "index": 0}}, threads=2)
    assert isinstance(job, execute.Job)
    assert job.root == str((tmp_path / "runs").resolve()), "the root is resolved where the job is made"
    assert pickle.loads(pickle.dumps(job)) == job  # what a Dask worker receives
    back = execute.Job.from_dict(json.loads(json.dumps(job.to_dict())))
    assert back == job
    assert job.recorded_meta() == {"sweep": {"name": "s", "index": 0}}
    job.recorded_meta()["x"] = 1
    assert "x" not in job.meta, "the recorded meta is a copy"


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
