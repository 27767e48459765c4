"""Sweeps, reruns, resume and Dask dispatch: each run in its own process, failures recorded, the sweep goes on."""

import json
import os
import time
from pathlib import Path

import pytest
from notebook_helpers import write_quick_notebook

from lab import derive, execute, ledger, runs, sweep, utils
from lab.params import NOTEBOOKS_DIR

# tests/test_train_notebook.py's tiny run, with enough patches (1 image x repeat 4) for one batch of 4
TINY = {"model": "edsr_baseline", "model_kwargs": "{num_block: 1, num_feat: 8}", "data": "builtin:astronaut",
        "epochs": "1", "repeat": "4", "patch_size": "12", "batch_size": "4", "eval_sets": "", "seed": "3"}


# -- cores shared by a local pool --------------------------------------------------------------------------------

def test_share_cores_sets_each_jobs_threads(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    jobs = [execute.Job("train", meta={"sweep": {"name": "s"}}) for _ in range(3)]
    assert sweep.share_cores(jobs, 2) == 4
    assert [j.threads for j in jobs] == [4] * len(jobs)
    assert [j.meta["sweep"]["threads"] for j in jobs] == [4] * len(jobs)
    assert sweep.share_cores(jobs, 16) == 1, "never fewer than one thread"
    assert utils.thread_env(3) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}


# -- specs and dry runs (no execution) ----------------------------------------------------------------------------

def test_committed_specs_expand_and_dry_run(capsys):
    specs = sorted((NOTEBOOKS_DIR / "sweeps").glob("*.yaml"))
    assert specs, "notebooks/sweeps/ holds example specs"
    for spec in specs:
        d = sweep.load_spec(spec)
        if "entries" in d:  # a lineage spec: its plan is checked entry by entry
            assert len(derive.run_lineage(spec, dry_run=True)) >= len(d["entries"]), spec.name
            continue
        table = sweep.sweep(spec, dry_run=True)
        n = len(sweep.combinations(d))
        assert len(table) == n, spec.name
        assert n > 1 or not {"grid", "zip", "list"} & set(d), spec.name  # demo: one run
        assert table["name"].is_unique, f"{spec.name}: run titles should tell the runs apart"
    from lab.cli import main

    assert main(["sweep", "loss", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "loss charbonnier" in out
    assert "4 run(s) planned" in out


def test_grid_zip_list_combine(quick, tmp_path):
    spec = {"notebook": str(quick), "base": {"sleep": 0.5}, "grid": {"x": [1, 2]}, "zip": {"fail": [True, False]},
            "list": [{"resume": "a"}, {"resume": "b"}, {}]}
    combos = sweep.combinations(sweep.load_spec(spec))
    assert len(combos) == 2 * 2 * 3
    assert {"x": 2, "fail": True, "resume": "b"} in combos
    jobs = sweep.expand(spec, root=tmp_path / "none")
    assert jobs[0].overrides == {"sleep": 0.5, "x": 1, "fail": True, "resume": "a"}
    assert jobs[0].meta["sweep"]["of"] == 12
    with pytest.raises(KeyError, match="unknown parameter.*'lr'"):
        sweep.expand({"notebook": str(quick), "grid": {"lr": [1, 2]}})
    with pytest.raises(ValueError, match="equal lengths"):
        sweep.load_spec({"zip": {"x": [1, 2], "fail": [True]}})
    with pytest.raises(ValueError, match="unknown key.*'grids'"):
        sweep.load_spec({"grids": {"x": [1]}})
    with pytest.raises(FileNotFoundError, match="sweep spec 'nope'"):
        sweep.load_spec("nope")


def test_arm_labels_title_runs_and_tags_reach_the_meta(quick, tmp_path):
    spec = {"notebook": str(quick), "sweep": "labelled", "tags": ["study-x"],
            "list": [{"arm": "small", "x": 1}, {"arm": "large", "x": 9}]}
    jobs = sweep.expand(spec, root=tmp_path / "none")
    assert [j.name for j in jobs] == ["labelled small", "labelled large"]
    assert jobs[1].overrides == {"x": 9}
    assert jobs[1].meta["sweep"]["arm"] == "large"
    assert all(j.meta["tags"] == ["study-x"] for j in jobs)
    with pytest.raises(ValueError, match="'tags' must be a list of strings"):
        sweep.load_spec({**spec, "tags": "study-x"})
    with pytest.raises(ValueError, match="'arm' must be a non-empty label"):
        sweep.load_spec({**spec, "list": [{"arm": "", "x": 1}]})


def test_rerun_says_when_the_training_files_changed_and_the_ledger_shows_it(quick, tmp_path):
    import numpy as np

    from lab import sources
    from lab.images import write_image

    photos, root = tmp_path / "photos", tmp_path / "runs"
    for i in range(3):
        write_image(photos / f"p{i}.png", np.full((16, 16, 3), 40 * i, np.uint8))
    old = runs.create({"x": 1, "data": str(photos), "scale": 2}, root=root, name="quick", notebook="quick.ipynb")
    old.update_meta(notebook_path=str(quick))
    mix = sources.open_sources(str(photos), 2)
    old.write_json("data", {"sources": [{**d, **f} for d, f in zip(mix.describe(), sources.fingerprints(mix))]})
    old.finish({"y": 2})
    job, warns = sweep.rerun_job(old.id, root=root)
    assert not [w for w in warns if "training data" in w]
    assert "data_changed" not in job.meta
    write_image(photos / "p3.png", np.zeros((16, 16, 3), np.uint8))
    job, warns = sweep.rerun_job(old.id, root=root)
    said = f"training data {str(photos)!r} changed since (3 image files then, 4 now): the rerun trains on the " \
           f"files as they are now, run {old.id} did not"
    assert said in warns
    assert job.meta["data_changed"] == [said], "the rerun records it"
    new = runs.create({"x": 1, "data": str(photos), "scale": 2}, root=root, name="quick", parent=old.id,
                      notebook="quick.ipynb")
    new.update_meta(**{k: job.meta[k] for k in ("rerun_of", "data_changed")})
    new.finish({"y": 2})
    df = ledger.load(root, cache=False).set_index("id")
    assert df.loc[new.id, "changed"] == f"vs #{old.id}: same params; training files changed"
    assert "_data_changed" not in df.columns
    assert bool(df.loc[new.id, "data_changed"]), "a column says so"
    assert not bool(df.loc[old.id, "data_changed"])
    redo = ledger.what_changed(df.reset_index()).set_axis(df.index)
    assert redo[new.id] == df.loc[new.id, "changed"], "recomputing keeps the data's change"
    unknown = runs.create({"x": 1, "data": str(photos), "scale": 2}, root=root, name="old", notebook="quick.ipynb")
    unknown.update_meta(notebook_path=str(quick))
    unknown.write_json("data", {"sources": [{"source": str(photos), "images": 3}]})  # made before fingerprints
    _, warns = sweep.rerun_job(unknown.id, root=root)
    assert f"run {unknown.id} records no fingerprint of its training data; cannot tell whether {str(photos)!r} " \
           "changed" in warns


@pytest.mark.slow
def test_rerun_warns_when_notebook_changed_and_resume_continues(quick, tmp_path):
    root = tmp_path / "runs"
    row = execute.run_job(execute.make_job(quick, {"x": 5}, root=root))
    assert row["status"] == "done"
    assert row["metric.y"] == 10
    job, warns = sweep.rerun_job(row["id"], root=root)
    assert job.parent == row["id"]
    assert job.overrides["x"] == 5
    assert not [w for w in warns if "notebook" in w]
    write_quick_notebook(quick, extra="\nprint('changed')")
    _, warns = sweep.rerun_job(row["id"], root=root)
    assert any("quick.ipynb changed since run 1" in w for w in warns)

    run = runs.Run(row["path"])  # pretend the run was cut off after saving a checkpoint
    with pytest.raises(ValueError, match="is done; nothing to resume"):
        sweep.resume_job(run.id, root=root)
    run.set_status("interrupted")
    (run.dir / "checkpoints").mkdir()
    (run.dir / "checkpoints" / "last.pth").write_bytes(b"weights")
    res = sweep.resume(run.id, root=root)
    assert res["status"] == "done"
    assert res["path"] == str(run.dir)
    assert run.metrics["resumed_from"] == str(run.dir / "checkpoints" / "last.pth")
    assert run.meta["resumed"][0]["status_before"] == "interrupted"
    assert (run.dir / "notebook.1.ipynb").is_file(), "the first attempt's notebook is kept"
    assert len(ledger.load(root)) == 1, "resume continues the same run"


def test_resume_needs_a_resume_parameter(tmp_path):
    nb = tmp_path / "noresume.ipynb"
    src = json.loads(write_quick_notebook(nb).read_text())
    cell = src["cells"][0]
    cell["source"] = "".join(ln for ln in cell["source"].splitlines(True) if not ln.startswith("resume"))
    nb.write_text(json.dumps(src))
    run, _, _ = execute.prepare_run(nb, {}, root=tmp_path)
    run.set_status("interrupted")
    (run.dir / "checkpoints").mkdir()
    (run.dir / "checkpoints" / "last.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="no 'resume' parameter"):
        sweep.resume_job(run.id, root=tmp_path)


@pytest.mark.slow
def test_dask_local_cluster_sweep(quick, tmp_path):
    from dask.distributed import LocalCluster

    spec = {"notebook": str(quick), "sweep": "dq", "grid": {"x": [1, 2]}}
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        table = sweep.sweep(spec, dask=cluster.scheduler_address, root=tmp_path, progress=False)
    assert sorted(table["y"]) == [2, 4]
    assert set(table["status"]) == {"done"}
    df = ledger.load(tmp_path)
    assert set(df["sweep"]) == {"dq"}
    assert set(df["param.x"]) == {1, 2}
    assert len({json.loads((Path(p) / "status.json").read_text())["pid"] for p in df["path"]}) == 2


# -- the train notebook: a sweep of tiny runs with two workers, then a rerun ---------------------------------------

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    spec = {"notebook": "train", "sweep": "tiny", "name": "tiny {seed} {patch_size}", "base": TINY,
            "list": [{"seed": "3"}, {"seed": "4"}, {"patch_size": "400"}]}  # the last fails in its data cell
    t0 = time.monotonic()
    table = sweep.sweep(spec, workers=2, root=root, progress=False)
    return root, table, time.monotonic() - t0


@pytest.mark.slow
def test_sweep_two_workers_failure_recorded(tiny_sweep):
    root, table, _ = tiny_sweep
    assert list(table["status"]) == ["done", "done", "failed"], table.to_string()
    bad = table.iloc[2]
    assert "smaller than the HR patch" in bad["error"]
    assert bad["error_cell"] >= 0
    df = ledger.load(root).set_index("id")
    assert list(df["status"]) == ["done", "done", "failed"]
    assert set(df["sweep"]) == {"tiny"}
    assert df.loc[1, "metric.valid_psnr_y"] > 15
    s1, s2 = (runs.Run(df.loc[i, "path"]).read("status.json") for i in (1, 2))
    assert s1["started"] <= s2["finished"], "two runs overlapped (2 workers)"
    assert s2["started"] <= s1["finished"], "two runs overlapped (2 workers)"


@pytest.mark.slow
def test_rerun_reproduces_metrics(tiny_sweep):
    root, table, _ = tiny_sweep
    first = table.iloc[0]
    row = sweep.rerun(int(first["id"]), root=root)
    assert row["status"] == "done", row["error"]
    new = runs.Run(row["path"])
    assert new.meta["parent"] == first["id"]
    assert new.meta["rerun_of"] == first["id"]
    old = runs.find(int(first["id"]), root)
    assert new.params == old.params
    for k in ("valid_psnr_y", "valid_ssim_y"):
        assert new.metrics[k] == pytest.approx(old.metrics[k], abs=1e-9), k
    assert ledger.load(root).set_index("id").loc[new.id, "changed"] == f"vs #{old.id}: same params"


@pytest.mark.slow
def test_evaluate_notebook_scores_a_run_checkpoint(tmp_path):
    from lab import models

    src = runs.create({"model": "edsr_baseline"}, root=tmp_path, name="src")
    src.save_checkpoint(models.checkpoint_payload(models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)),
                        "final")
    src.finish({})
    run = execute.run_notebook("evaluate", {"run": str(src.id), "sets": "builtin:chelsea", "profile_size": "16"},
                             root=tmp_path)
    st = run.read("status.json")
    assert st["status"] == "done", st.get("error")
    assert run.meta["parent"] == src.id
    m = run.metrics
    assert m["builtin-chelsea_psnr_y"] > 15
    assert m["gflops"] > 0
    assert m["scale"] == 2
    assert m["builtin-chelsea_baseline_psnr_y"] > 15
    assert m["builtin-chelsea_baseline"] == "bicubic"
    assert (run.dir / "eval" / "builtin-chelsea" / "chelsea.png").is_file()
    row = ledger.load(tmp_path).set_index("id").loc[run.id]
    assert row["cost.gflops"] == m["gflops"]
    assert row["parent"] == src.id
    assert row["param.model"] == "edsr_baseline", "the row names the model read from the checkpoint"
    assert row["param.scale"] == 2, "and its scale"
    nb = json.loads(run.notebook.read_text())
    shown = [o for c in nb["cells"] if "image_grid" in "".join(c["source"]) for o in c["outputs"]
             if "image/png" in o.get("data", {})]
    assert shown, "the notebook shows the images it scored"


@pytest.mark.slow
@pytest.mark.reference
def test_evaluate_notebook_imports_official_weights(ref_dir, set5_dir, tmp_path):
    """IMDN x2 (official weights) through the evaluate notebook lands on the published Set5 38.00 dB / 0.9605."""
    run = execute.run_notebook("evaluate", {"pretrained": str(ref_dir / "weights" / "IMDN" / "IMDN_x2.pth"),
                                          "sets": str(set5_dir), "profile_size": "0"}, root=tmp_path)
    st = run.read("status.json")
    assert st["status"] == "done", st.get("error")
    m = run.metrics
    assert m["set5_psnr_y"] == pytest.approx(38.00, abs=0.02)
    assert m["set5_ssim_y"] == pytest.approx(0.9605, abs=5e-4)
    assert run.meta["title"] == "eval imdn"
    assert run.params["source"].endswith("IMDN_x2.pth")


@pytest.mark.slow
def test_dask_sweep_over_tls(quick, tmp_path):
    import shutil
    import subprocess

    from dask.distributed import LocalCluster
    from distributed.security import Security

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    files = {"tls_ca_file": str(cert), "tls_client_cert": str(cert), "tls_client_key": str(key)}
    server = Security(**files, tls_scheduler_cert=str(cert), tls_scheduler_key=str(key), tls_worker_cert=str(cert),
                      tls_worker_key=str(key), require_encryption=True)
    spec = {"notebook": str(quick), "sweep": "tls", "grid": {"x": [3]}}
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None, protocol="tls",
                      security=server) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        table = sweep.sweep(spec, dask=cluster.scheduler_address, root=tmp_path / "runs", progress=False,
                            security=sweep.tls_security(str(cert), str(cert), str(key)))
    assert list(table["y"]) == [6]
    assert list(table["status"]) == ["done"]


def test_a_sweep_with_an_unknown_name_fails_before_running_anything(tmp_path):
    spec = {"notebook": "train", "sweep": "typo", "base": TINY, "list": [{"seed": "3"}, {"model": "no_such_model"}]}
    with pytest.raises(KeyError, match="run 1 .*unknown model 'no_such_model'"):
        sweep.sweep(spec, root=tmp_path, dry_run=True)
    assert not (tmp_path / "0001-typo").exists()
