"""One notebook run in its own process: a whole-run timeout fails it with the cell it was in; bad params make no run."""

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
