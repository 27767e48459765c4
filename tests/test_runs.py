"""Run directories: atomic ids under concurrency, recorded params/env/git, status transitions."""

import json
import multiprocessing as mp

import pytest

from lab import runs


def _start(args):
    root, i = args
    return runs.create({"model": "edsr_baseline", "i": i}, root=root).name


def test_concurrent_ids_never_collide(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:  # four fresh interpreters, each allocating four ids while the others do
        # if the workers cannot start, map() would wait forever: bound it
        names = pool.map_async(_start, [(str(tmp_path), i) for i in range(16)], chunksize=1).get(timeout=300)
    ids = sorted(int(n.split("-")[0]) for n in names)
    assert ids == list(range(1, 17))
    assert len({p.name for p in tmp_path.iterdir() if p.name[0].isdigit()}) == 16


def test_run_records_params_env_git_status(tmp_path):
    run = runs.create({"model": "srcnn", "lr": 1e-3}, root=tmp_path, name="My Test Run")
    assert run.name == "0001-my-test-run"
    assert run.params == {"model": "srcnn", "lr": 1e-3}
    meta = run.meta
    assert meta["env"]["torch"] and meta["env"]["torch_threads"] >= 1
    assert set(meta["git"]) == {"commit", "dirty"}
    assert run.status == "running"
    run.log_epoch({"epoch": 0, "train_loss": 0.5})
    run.log_epoch({"epoch": 1, "train_loss": 0.4})
    assert [h["epoch"] for h in run.history] == [0, 1]
    run.finish({"psnr_y": 30.0})
    assert run.status == "done" and run.metrics == {"psnr_y": 30.0}
    assert not list(tmp_path.rglob("*.tmp")), "temp files must be renamed into place"


def test_failed_run_keeps_error_and_cell(tmp_path):
    run = runs.create({}, root=tmp_path)
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        run.fail(e, cell=7)
    st = json.loads((run.dir / "status.json").read_text())
    assert st["status"] == "failed" and st["error"]["cell"] == 7
    assert st["error"]["type"] == "RuntimeError" and "boom" in st["error"]["traceback"]


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
    assert run.dir == made.dir and run.params == {"a": 1, "b": 2}
