"""Runs derived from runs: `lab run --from`, the ledger's lineage, lineage specs run in dependency order, and
`lab extend`'s refusals; on a notebook that records a run in a second (no torch)."""

from __future__ import annotations

import json

import pytest
from notebook_helpers import _cell

from lab import cli, derive, execute, ledger, lineage, runs


def _lineage_notebook(path):
    """A notebook shaped like train's parameters (model, model_kwargs, steps, schedule, resume) that trains nothing."""
    params = ('x = 1\nmodel = "resunet"\nmodel_kwargs = {"norm": "instance"}\nsteps = 0\nvalid_every = 0\n'
              'schedule = "one_cycle"\nschedule_kwargs = {}\nlr = 1e-3\nfail = False\nresume = ""\nrun_dir = ""\n')
    body = ('import lab.runs\nP = {"x": x, "model": model, "model_kwargs": model_kwargs, "steps": steps, '
            '"valid_every": valid_every, "schedule": schedule, "schedule_kwargs": schedule_kwargs, "lr": lr, '
            '"fail": fail}\nrun = lab.runs.start(P, run_dir=run_dir, name="lin")\n'
            'if fail:\n    raise RuntimeError("boom")\nrun.finish({"y": x * 2, "resumed_from": resume})')
    nb = {"cells": [_cell(params, ["parameters"]), _cell(body)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


@pytest.fixture
def nb(tmp_path):
    return _lineage_notebook(tmp_path / "lin.ipynb")


def test_derived_run_is_parent_params_plus_changes_and_records_its_parent(nb, tmp_path):
    root = tmp_path / "runs"
    first = execute.run_job(execute.make_job(nb, {"x": 2, "lr": 5e-4}, root=root))
    job, _ = derive.derive_job(first["id"], {"x": "3", "norm": "none"}, root=root)
    row = execute.run_job(job)
    assert row["status"] == "done", row["error"]
    new = runs.Run(row["path"])
    assert new.meta["parent"] == first["id"]
    assert new.meta["changes"] == {"x": "3", "norm": "none"}
    assert new.params["x"] == 3
    assert new.params["lr"] == 5e-4, "a param the change leaves alone keeps the parent's value"
    assert new.params["model_kwargs"] == {"norm": "none"}, "a model keyword reaches model_kwargs"
    changed = ledger.load(root).set_index("id").loc[new.id, "changed"]
    assert changed.startswith(f"vs #{first['id']}: ")
    assert "x 2→3" in changed


def test_a_dotted_change_merges_into_a_mapping_and_an_unknown_one_is_named(nb, tmp_path):
    root = tmp_path / "runs"
    first = execute.run_job(execute.make_job(nb, {}, root=root))
    job, _ = derive.derive_job(first["id"], {"model_kwargs.channels": "[8, 16]"}, root=root)
    assert job.overrides["model_kwargs"] == {"norm": "instance", "channels": [8, 16]}
    with pytest.raises(KeyError, match="unknown change 'colour'"):
        derive.derive_job(first["id"], {"colour": "red"}, root=root)


def test_cli_run_from_and_ledger_lineage(nb, tmp_path, capsys):
    root = str(tmp_path / "runs")
    first = execute.run_job(execute.make_job(nb, {"x": 1}, root=root))
    assert cli.main(["run", "--from", str(first["id"]), "-p", "x", "5", "--runs", root]) == 0
    assert cli.main(["run", "--from", "2", "-p", "lr", "3e-4", "--runs", root]) == 0
    capsys.readouterr()
    assert cli.main(["ledger", "--lineage", "1", "--runs", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.replace("└", "").split()[0] for ln in lines[1:]] == ["#1", "#2", "#3"]
    assert lines[3].index("#3") > lines[2].index("#2"), "a grandchild is indented below its parent"
    assert "lr 0.001→0.0003" in lines[3]
    assert cli.main(["ledger", "--lineage", "99", "--runs", root]) == 2


def test_lineage_table_lists_descendants_depth_first(tmp_path):
    root = tmp_path / "runs"
    for parent in (None, 1, 1, 2):  # 1 -> (2 -> 4, 3)
        runs.create({"x": 1}, root=root, notebook="lin.ipynb", parent=parent).finish({})
    df = ledger.load(root)
    assert lineage.descendants(df, 1) == [(1, 0), (2, 1), (4, 2), (3, 1)]
    assert lineage.descendants(df, 2) == [(2, 0), (4, 1)]
    table = lineage.lineage_table(df, 1)
    assert list(table["parent"]) == ["", "#1", "#2", "#1"]


def test_lineage_spec_runs_in_dependency_order_and_skips_below_a_failure(nb, tmp_path):
    spec = {"notebook": str(nb), "sweep": "mylog", "base": {"x": 1},
            "entries": [{"id": 20, "note": "start", "params": {"lr": 5e-4}},
                        {"id": "29~30", "vary": {"x": [3, 4]}, "chosen": {"x": 4}},
                        {"id": "33.2", "params": {"steps": 10}},
                        {"id": 40, "from": 20, "params": {"fail": True}},
                        {"id": 41, "params": {"x": 6}}]}
    plan = derive.plan(spec)
    assert [r["label"] for r in plan] == ["20", "29~30/x=3", "29~30/x=4", "33.2", "40", "41"]
    assert plan[3]["from"] == "29~30/x=4", "an entry after a varied one continues the chosen run"
    assert plan[4]["from"] == "20"
    spec["entries"] = [spec["entries"][0], spec["entries"][2] | {"from": 20}, *spec["entries"][3:]]
    table = derive.run_lineage(spec, root=tmp_path / "runs")
    assert list(table["status"]) == ["done", "done", "failed", "skipped"]
    by_label = {r.meta["lineage"]["run"]: r for r in runs.scan(tmp_path / "runs")}
    r332 = by_label["33.2"]
    assert r332.meta["parent"] == by_label["20"].id
    assert r332.params["lr"] == 5e-4, "params flow down the chain"
    assert r332.params["steps"] == 10
    assert r332.meta["lineage"]["entry"] == "33.2"


def test_lineage_spec_errors_name_the_entry(nb):
    with pytest.raises(ValueError, match="from '7' is not an earlier entry"):
        derive.load_lineage({"notebook": str(nb), "entries": [{"id": 1}, {"id": 2, "from": 7}]})
    with pytest.raises(ValueError, match="without a 'chosen' value"):
        derive.load_lineage({"notebook": str(nb), "entries": [{"id": 1, "vary": {"x": [1, 2]}}, {"id": 2}]})
    with pytest.raises(ValueError, match="appears twice"):
        derive.load_lineage({"notebook": str(nb), "entries": [{"id": 1}, {"id": 1}]})


def _finished(nb, root, **params):
    row = execute.run_job(execute.make_job(nb, params, root=root))
    run = runs.Run(row["path"])
    (run.dir / "checkpoints").mkdir()
    (run.dir / "checkpoints" / "last.pth").write_bytes(b"weights")
    return run


def test_extend_refuses_budget_shaped_schedules_and_continues_a_decay(nb, tmp_path):
    root = tmp_path / "runs"
    cyc = _finished(nb, root, steps=100, valid_every=10)
    with pytest.raises(ValueError, match="schedule 'one_cycle' is shaped by its budget"):
        derive.extend_job(cyc.id, 200, root=root)
    dec = _finished(nb, root, steps=100, valid_every=10, schedule="exp_decay", schedule_kwargs={"rate": 0.5})
    with pytest.raises(ValueError, match="must be more than the 100 steps"):
        derive.extend_job(dec.id, 50, root=root)
    job, _ = derive.extend_job(dec.id, 300, root=root)
    assert job.parent == dec.id
    assert job.overrides["steps"] == 300
    assert job.overrides["schedule_kwargs"] == {"rate": 0.5, "decay_steps": 100}, "the same rate per step"
    assert job.overrides["resume"] == str(dec.dir / "checkpoints" / "last.pth")
    row = execute.run_job(job)
    assert runs.Run(row["path"]).meta["extended_from"]["steps_before"] == 100
    assert cli.main(["extend", str(cyc.id), "--steps", "200", "--runs", str(root)]) == 2


def test_a_notebook_parent_parameter_is_looked_up_and_recorded(tmp_path):
    root = tmp_path / "runs"
    first = runs.create({"x": 1}, root=root, name="first")
    child = runs.start({"x": 2}, parent=first.name, root=root)  # the train notebook's `parent = "0001-first"`
    assert child.meta["parent"] == first.id
    with pytest.raises(FileNotFoundError):
        runs.start({"x": 3}, parent="77", root=root)


@pytest.mark.slow
def test_extended_run_continues_the_parents_weights_and_decay(tmp_path):
    import torch

    from lab.execute import run_notebook

    tiny = {"model": "edsr_baseline", "model_kwargs": "{num_block: 1, num_feat: 8}", "data": "builtin:astronaut",
            "patch_size": "12", "batch_size": "4", "eval_sets": "", "seed": "3", "profile_size": "0",
            "valid_every": "2", "schedule": "exp_decay", "schedule_kwargs": "{rate: 0.5, decay_steps: 4}"}
    parent = run_notebook("train", {**tiny, "steps": "4"}, root=tmp_path)
    whole = run_notebook("train", {**tiny, "steps": "8"}, root=tmp_path)
    job, _ = derive.extend_job(parent.id, 8, root=tmp_path)
    ext = runs.Run(execute.run_job(job)["path"])
    for r in (parent, whole, ext):
        assert r.status == "done", r.status_record.get("error")
    assert ext.meta["parent"] == parent.id
    assert [h["epoch"] for h in ext.history] == [2, 3], "the extension starts after the parent's last epoch"
    assert [h["lr"] for h in ext.history] == pytest.approx([h["lr"] for h in whole.history][2:], rel=1e-9)
    a = torch.load(whole.checkpoint("final"), weights_only=True)["state_dict"]
    b = torch.load(ext.checkpoint("final"), weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), f"{k}: carrying on differs from training in one go"


def test_resume_with_a_changed_lr_records_the_change_and_its_step(nb, tmp_path, capsys):
    root = tmp_path / "runs"
    run = runs.Run(execute.run_job(execute.make_job(nb, {"steps": 8}, root=root))["path"])
    run.log_epoch({"epoch": 0, "step": 4, "lr": 1e-3})
    run.set_status("interrupted")
    (run.dir / "checkpoints").mkdir()
    (run.dir / "checkpoints" / "last.pth").write_bytes(b"weights")
    assert cli.main(["resume", str(run.id), "-p", "x", "5", "--runs", str(root)]) == 2
    assert "keeps what it trained with except ['lr', 'schedule', 'schedule_kwargs']" in capsys.readouterr().err
    assert cli.main(["resume", str(run.id), "-p", "lr", "3e-4", "--runs", str(root)]) == 0
    assert run.params["lr"] == 3e-4, "the params say what trains from here on"
    change = run.meta["param_changes"][-1]
    assert change["changed"] == {"lr": [1e-3, 3e-4]}
    assert change["step"] == 4


def test_a_changed_lr_resume_trains_the_remaining_steps_at_the_new_lr(tmp_path):
    import torch
    from fit_helpers import CutAfter

    from lab import data, learner, models
    from lab.recording import load_resume_state, record_run

    run = runs.create({"x": 1}, root=tmp_path)

    def make():
        torch.manual_seed(0)
        net = models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)
        dls = data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8,
                               valid="builtin:chelsea", valid_max_size=48, seed=5)
        lrn = learner.restoration_learner(dls, net, loss="l1", lr=1e-3, cbs=record_run(run), path=run.dir)
        lrn.remove_cb(lrn.progress)
        return lrn

    a = make()
    with a.no_logging():
        a.fit(3, 1e-3, cbs=[CutAfter(0), *learner.schedule_callbacks(learner.as_budget(a, 3), 1e-3, "constant")])
    c = make()
    start = load_resume_state(c, run.dir / "checkpoints" / "last.pth")
    with c.no_logging():
        learner.fit_schedule(c, 3, 3e-4, "constant", start_epoch=start)
    assert [h["epoch"] for h in run.history] == [0, 1, 2]
    assert [h["lr"] for h in run.history] == pytest.approx([1e-3, 3e-4, 3e-4])


def test_changed_names_the_keys_of_a_mapping_param_that_differ():
    text = ledger.describe_change({"model_kwargs": {"num_block": 1, "num_feat": 16}, "lr": 1e-3},
                                  {"model_kwargs": {"num_block": 1, "num_feat": 8, "norm": "batch"}, "lr": 1e-3}, 4)
    assert text == "vs #4: model_kwargs.num_feat 8→16, model_kwargs.norm batch→∅"


def test_an_unknown_lineage_root_names_the_runs_there_are():
    import pandas as pd

    from lab.lineage import descendants

    with pytest.raises(KeyError, match="run 4 is not in the ledger; runs: 1..3"):
        descendants(pd.DataFrame({"id": [1, 2, 3], "parent": [None, 1, 2]}), 4)
    with pytest.raises(KeyError, match="run 1 is not in the ledger; it has no runs"):
        descendants(pd.DataFrame({"id": [], "parent": []}), 1)
