"""Run directories: atomic ids under concurrency, recorded params/env/git, status transitions."""

import json

import pytest

from lab import runs, utils


def test_run_records_params_env_git_status(tmp_path):
    run = runs.create({"model": "srcnn", "lr": 1e-3}, root=tmp_path, name="My Test Run")
    assert run.name == "0001-my-test-run"
    assert run.params == {"model": "srcnn", "lr": 1e-3}
    meta = run.meta
    assert meta["env"]["torch"]
    assert meta["env"]["torch_threads"] >= 1
    assert set(meta["git"]) == {"commit", "dirty"}
    assert run.status == "running"
    run.log_epoch({"epoch": 0, "train_loss": 0.5})
    run.log_epoch({"epoch": 1, "train_loss": 0.4})
    assert [h["epoch"] for h in run.history] == [0, 1]
    run.finish({"psnr_y": 30.0})
    assert run.status == "done"
    assert run.metrics == {"psnr_y": 30.0}
    assert not list(tmp_path.rglob("*.tmp")), "temp files must be renamed into place"


def test_failed_run_keeps_error_and_cell(tmp_path):
    run = runs.create({}, root=tmp_path)
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        run.fail(e, cell=7)
    st = json.loads((run.dir / "status.json").read_text())
    assert st["status"] == "failed"
    assert st["error"]["cell"] == 7
    assert st["error"]["type"] == "RuntimeError"
    assert "boom" in st["error"]["traceback"]


def test_bad_status_and_find(tmp_path):
    run = runs.create({}, root=tmp_path, name="a")
    with pytest.raises(ValueError, match="accepted"):
        run.set_status("exploded")
    assert runs.find(run.id, tmp_path).dir == run.dir
    with pytest.raises(FileNotFoundError):
        runs.find(99, tmp_path)


def test_attach_to_runner_created_dir(tmp_path):
    made = runs.create({"a": 1}, root=tmp_path)
    run = runs.start({"a": 1, "b": 2}, run_dir=made.dir)
    assert run.dir == made.dir
    assert run.params == {"a": 1, "b": 2}


def test_a_title_given_to_the_runner_stays_the_runs_title(tmp_path):
    given = runs.create({"name": ""}, name="conc r1 p3", root=tmp_path)
    runs.start({"name": "", "model": "edsr_baseline"}, run_dir=given.dir, name="edsr_baseline")
    assert runs.Run(given.dir).meta["title"] == "conc r1 p3"
    untitled = runs.create({"name": ""}, root=tmp_path)
    runs.start({"name": "", "model": "edsr_baseline"}, run_dir=untitled.dir, name="edsr_baseline")
    assert runs.Run(untitled.dir).meta["title"] == "edsr_baseline", "without a title the notebook names the run"


@pytest.mark.parametrize("size", [0, 1, utils._READ_CHUNK - 1, utils._READ_CHUNK, 3 * utils._READ_CHUNK + 5])
def test_read_bytes_returns_the_whole_file_and_atomic_writes_stream(tmp_path, size):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = utils.atomic_write_with(tmp_path / "f.bin", lambda f: f.write(data), sync=False)
    assert utils.read_bytes(path) == data
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"], "no temp file left behind"
