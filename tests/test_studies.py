"""Studies: every spec validates and dry-runs (CPU and full profile), the answer table labels noise honestly, runs
that start from another arm wait for it, finished runs are reused, reports and the notebook work, and one tiny
combination of each study runs end to end."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab import ledger, studies
from lab.cli import main
from lab.execute import kernel_for
from lab.params import notebook_path
from lab.studies import report as study_report

# -- a study on a notebook that records a run in a second (no torch) ------------------------------------------------

def _cell(src, tags=None):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags or []}, "outputs": [],
            "source": src}


def quick_notebook(path: Path) -> Path:
    """x, seed, init_from and fail as parameters; records y = 10 + x + seed / 10 and where it started from."""
    params = ('name = ""          # run title\nx = 0.0            # a number\nseed = 0           # a seed\n'
              'init_from = ""     # a run id\nfail = False       # raise\nrun_dir = ""       # set by the runner\n')
    nb = {"cells": [_cell(params, ["parameters"]),
                    _cell('import lab.runs\nrun = lab.runs.start({"name": name, "x": x, "seed": seed, "init_from": '
                          'init_from, "fail": fail}, run_dir=run_dir, name=name or "quick")\nif fail:\n'
                          '    raise RuntimeError("boom")\n'
                          'run.finish({"y": 10 + x + seed / 10, "started_from": init_from})')],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def quick_study(nb: Path, **study) -> dict:
    return {"notebook": str(nb), "sweep": "quickstudy", "base": {"x": 0.0},
            "list": [{"arm": "base"}, {"arm": "up", "x": 0.5}, {"arm": "same", "x": 0.05},
                     {"arm": "down", "x": -0.5}, {"arm": "child", "x": 1.0, "init_from": "@up"}],
            "study": {"question": "does x move y?", "log": "test log", "look_at": "deltas", "metric": "metric.y",
                      "baseline": "base", "view": "table", **study}}


@pytest.fixture
def qnb(tmp_path):
    return quick_notebook(tmp_path / "quick.ipynb")


# -- specs ------------------------------------------------------------------------------------------------------------

def test_every_study_validates_and_dry_runs(tmp_path, capsys):
    names = studies.list_studies()
    assert len(names) == 10
    for name in names:
        spec = studies.load_study(name)
        st = spec["study"]
        assert all(st[k] for k in studies.REQUIRED), name
        text = (studies.STUDIES_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# Study:"), name
        assert "CPU wall time" in text, name
        assert "# Source: 00" in text, name  # the seed file and entries it comes from (tests/test_logs.py)
        jobs = studies.plan(name, root=tmp_path)  # params checked against the notebook, names against the lab
        arms = studies.arm_overrides(spec)
        assert len(jobs) == len(arms) + len(st["seeds"]) - 1
        base = [j for j in jobs if j.study.arm == st["baseline"]]
        assert sorted(j.overrides["seed"] for j in base) == st["seeds"], "the baseline runs at every seed"
        assert len({j.name for j in jobs}) == len(jobs), "titles tell the runs apart"
        assert all(j.meta["tags"] == [name] for j in jobs)
        assert all(j.overrides["name"] == j.name for j in jobs), "the notebook titles runs by arm"
        assert all(j.timeout for j in jobs)
    assert main(["study", "edsr", "--dry-run", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "x3 from x2" in out
    assert "baseline" in out
    assert "8 run(s) planned" in out
    assert main(["study"]) == 0
    assert "l1_vs_mse: Does L1 beat MSE" in capsys.readouterr().out


def test_full_profiles_name_missing_data_and_dry_run_with_the_real_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_BENCHMARKS", str(tmp_path / "bench"))
    for name in studies.list_studies():
        with pytest.raises(FileNotFoundError, match=r"needs data that is not here: data/div2k_sub .*lab data prepare"):
            studies.plan(name, "full", data_root=tmp_path)
    (tmp_path / "data" / "div2k_sub").mkdir(parents=True)
    for s in ("Set5", "Set14", "B100", "Urban100"):
        (tmp_path / "bench" / s / "HR").mkdir(parents=True)
    for name in studies.list_studies():
        jobs = studies.plan(name, "full", data_root=tmp_path, root=tmp_path / "runs")
        assert all(j.overrides["data"] == str(tmp_path / "data" / "div2k_sub") for j in jobs), name
        assert all(j.overrides["steps"] >= 10000 for j in jobs), name
        # 002's SRGAN series validates on BSDS100 (B100); the others on Set5
        assert all(j.overrides["valid"] in ("Set5", "B100") for j in jobs), name
    edsr = {j.study.arm: j.overrides for j in studies.plan("edsr", "full", data_root=tmp_path)}
    assert edsr["baseline"]["model_kwargs"] == {}
    assert edsr["wider"]["model_kwargs"]["num_feat"] == 256
    with pytest.raises(KeyError, match="no profile 'huge'"):
        studies.plan("edsr", "huge")


def test_relative_data_folders_are_taken_from_the_data_root_with_the_data_spec_grammar(tmp_path):
    from lab.studies.planning import _absolute

    mix = _absolute("photos/:0.7, div2k_hr:0.3", tmp_path)
    assert mix == f"{tmp_path / 'photos'}:0.7, div2k_hr:0.3"
    assert _absolute("builtin:astronaut,coffee", tmp_path) == "builtin:astronaut,coffee"
    assert _absolute("/abs/hr", tmp_path) == "/abs/hr"
    assert _absolute("a/b:2", tmp_path) == f"{tmp_path / 'a' / 'b'}:2"
    with pytest.raises(ValueError, match="give a weight to every source or to none"):
        _absolute("a/:0.7, b/", tmp_path)  # lab.sources.parse_data_spec's error, not a silent rewrite


def test_a_study_job_round_trips_through_pickle_and_json_and_records_plain_meta(qnb, tmp_path):
    jobs = studies.plan(quick_study(qnb), root=tmp_path)
    child = next(j for j in jobs if j.study.arm == "child")
    assert child.study.after == studies.ArmRun("up", 0)
    assert child.study.after_key == ("quickstudy", "up", 0)
    assert pickle.loads(pickle.dumps(child)) == child  # what a Dask worker receives
    assert studies.StudyJob.from_dict(json.loads(json.dumps(child.to_dict()))) == child
    recorded = json.loads(json.dumps(child.recorded_meta()))["study"]
    assert sorted(recorded) == ["after", "arm", "name", "overrides", "profile", "seed", "title"]
    assert recorded["after"] == {"arm": "up", "seed": 0}
    assert child.recorded_meta()["tags"] == ["quickstudy"]


def test_bad_study_sections_are_named(qnb):
    with pytest.raises(ValueError, match="missing \\['look_at'\\]"):
        studies.load_study(quick_study(qnb, look_at=""))
    with pytest.raises(ValueError, match="view 'pie' unknown"):
        studies.load_study(quick_study(qnb, view="pie"))
    with pytest.raises(ValueError, match="'nope'.* not arms"):
        studies.load_study(quick_study(qnb, baseline="nope"))
    bad_ref = quick_study(qnb)
    bad_ref["list"].append({"arm": "orphan", "init_from": "@missing"})
    with pytest.raises(ValueError, match="starts from @missing"):
        studies.load_study(bad_ref)
    with pytest.raises(ValueError, match="without a 'study' section"):
        studies.load_study({"notebook": str(qnb), "list": [{"x": 1.0}]})


# -- the answer on synthetic ledger rows (no runs) --------------------------------------------------------------------

def _rows(jobs, values, status="done", start=1):
    """Ledger rows as lab.ledger makes them, one per (job index, value)."""
    out = []
    for k, (i, v) in enumerate(values):
        ov = jobs[i].overrides
        out.append({"id": start + k, "status": status, "tags": "quickstudy", "path": None, "metric.y": v,
                    "param.x": ov["x"], "param.seed": ov["seed"], "param.fail": False,
                    "param.init_from": ov.get("init_from", "")})
    return out


def test_answer_labels_deltas_against_the_seed_spread(qnb):
    spec = quick_study(qnb, versus={"child": "up"})
    jobs = studies.plan(spec)
    arm = {(j.study.arm, j.study.seed): i for i, j in enumerate(jobs)}
    values = [(arm["base", 0], 10.0), (arm["base", 1], 10.2), (arm["up", 0], 10.5), (arm["same", 0], 10.15),
              (arm["down", 0], 9.5)]
    rows = _rows(jobs, values)
    rows += _rows(jobs, [(arm["up", 0], 99.0)], status="failed", start=50)  # a failed run never answers
    other = _rows(jobs, [(arm["same", 0], 50.0)], start=60)
    other[0]["param.x"] = 7.0  # other params: not this study's run
    rows += other
    df = pd.DataFrame(rows)
    table = studies.answer(df, spec)
    t = table.set_index("arm")
    assert list(table["arm"]) == ["base", "up", "same", "down", "child"]
    assert t.loc["base", "n"] == 2
    assert t.loc["base", "y"] == pytest.approx(10.1)
    assert table.attrs["spread"] == pytest.approx(0.2)
    assert t.loc["up", "delta"] == pytest.approx(0.4)
    assert t.loc["up", "label"] == "better"
    assert t.loc["same", "label"] == "within noise"
    assert t.loc["down", "label"] == "worse"
    assert t.loc["child", "label"] == "no run"
    assert t.loc["child", "vs"] == "up"
    v = studies.verdict(table)
    assert v.startswith("'up' gains most")
    assert "better: 'up'" in v
    assert "worse: 'down'" in v
    assert "1 of 3" in v

    lower = studies.answer(df, quick_study(qnb, higher_is_better=False))
    assert lower.set_index("arm").loc["up", "label"] == "worse", "lower is better flips the labels"

    one_seed = studies.answer(pd.DataFrame(_rows(jobs, values[:1] + values[2:])), spec)
    assert set(one_seed["label"]) >= {"no noise estimate"}
    assert math.isnan(one_seed.attrs["spread"])
    assert "no noise estimate" in studies.verdict(one_seed)
    assert studies.verdict(studies.answer(pd.DataFrame(_rows(jobs, values[2:3])), spec)).startswith("No answer yet")

    newer = pd.DataFrame(rows + _rows(jobs, [(arm["up", 0], 12.0)], start=70))
    assert studies.answer(newer, spec).set_index("arm").loc["up", "runs"] == "#70", "the newest matching run"


def test_an_arm_versus_null_is_a_reference_compared_with_nothing(qnb):
    """x3 from scratch is the reference of x3 from x2; its delta to the x2 baseline would mean nothing."""
    spec = quick_study(qnb, versus={"child": "up", "up": None})
    jobs = studies.plan(spec)
    arm = {(j.study.arm, j.study.seed): i for i, j in enumerate(jobs)}
    rows = _rows(jobs, [(arm["base", 0], 10.0), (arm["base", 1], 10.2), (arm["up", 0], 12.0),
                        (arm["down", 0], 9.5)])
    t = studies.answer(pd.DataFrame(rows), spec).set_index("arm")
    assert t.loc["up", "label"] == "reference"
    assert pd.isna(t.loc["up", "vs"])
    assert math.isnan(t.loc["up", "delta"])
    assert "'up'" not in studies.verdict(t.reset_index()).split("better:")[1], "a reference is never judged"


def test_the_baseline_never_matches_an_arm_that_differs_only_by_a_param_the_baseline_leaves_at_its_default(qnb):
    """An arm setting a param the baseline does not set (FSRCNN d=64 vs the paper's d=56) ran later: its run must not
    be read as the baseline's (the same x and seed, and newer)."""
    spec = quick_study(qnb)
    spec["list"].append({"arm": "flagged", "fail": True})
    jobs = studies.plan(spec)
    arm = {(j.study.arm, j.study.seed): i for i, j in enumerate(jobs)}
    rows = _rows(jobs, [(arm["base", 0], 10.0), (arm["base", 1], 10.1), (arm["flagged", 0], 3.0)])
    rows[-1]["param.fail"] = True
    found = studies.match_runs(pd.DataFrame(rows), jobs)
    assert int(found[arm["base", 0]]["id"]) == 1
    assert int(found[arm["flagged", 0]]["id"]) == 3
    t = studies.answer(pd.DataFrame(rows), spec).set_index("arm")
    assert t.loc["base", "runs"] == "#1, #2"
    assert t.loc["base", "y"] == pytest.approx(10.05)


# -- running: waves, reuse, tags, report, notebook ------------------------------------------------------------------

@pytest.mark.slow
def test_waves_reuse_tags_report_and_notebook(qnb, tmp_path, capsys, monkeypatch):
    root = tmp_path / "runs"
    spec_path = tmp_path / "quickstudy.yaml"
    spec = quick_study(qnb)
    spec["list"].append({"arm": "broken", "fail": True})
    spec["list"].append({"arm": "orphan child", "init_from": "@broken"})
    import yaml

    spec_path.write_text(yaml.safe_dump(spec))
    res = studies.run_study(spec_path, workers=2, root=root, progress=False)
    by = {r["title"]: r for r in res.rows}
    assert by["quickstudy: orphan child"]["status"] == "skipped", "a run whose start failed is not run"
    assert sum(r["status"] == "done" for r in res.rows) == 6
    assert len(res.rows) == 8
    df = ledger.load(root, warn=False)
    rows = studies.study_rows(df, spec)
    child, up = (rows[rows["arm"] == a].iloc[0] for a in ("child", "up"))
    assert child["param.init_from"] == str(int(up["id"]))
    assert child["title"] == "quickstudy: child"
    assert res.answer.set_index("arm").loc["up", "label"] == "better"
    assert res.verdict.startswith("'child'")

    again = studies.run_study(spec_path, workers=2, root=root, progress=False)
    assert len(again.reused) == 6
    assert {r["title"] for r in again.rows} == {"quickstudy: broken",
                                                                          "quickstudy: orphan child"}
    assert len(studies.run_study(spec_path, root=root, dry_run=True, fresh=True).reused) == 0

    assert main(["ledger", "--runs", str(root), "--tag", "quickstudy", "--columns", "id,tags"]) == 0
    assert capsys.readouterr().out.count("quickstudy") >= 8

    md = tmp_path / "report" / "quick.md"
    assert main(["export", str(md), "--study", str(spec_path), "--runs", str(root)]) == 0
    text = md.read_text()
    assert "- question: does x move y?" in text
    assert "| up |" in text
    assert "- verdict: 'child' gains most" in text
    assert (md.parent / "quick_answer.png").read_bytes()[:4] == b"\x89PNG"
    assert "![answer](quick_answer.png)" in text

    import papermill as pm

    monkeypatch.setenv("LAB_STATIC", "1")  # as under `lab run`: plots as PNGs, no dropdown
    nb = notebook_path("studies")
    out_md = tmp_path / "nb.md"
    pm.execute_notebook(str(nb), str(tmp_path / "executed.ipynb"), kernel_name=kernel_for(nb), cwd=str(nb.parent),
                        progress_bar=False, parameters={"study": str(spec_path), "runs_dir": str(root),
                                                        "report": str(out_md)})
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    outs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outs), "the plot is a static PNG under papermill"
    assert any("gains most" in json.dumps(o) for o in outs)
    assert out_md.is_file()


def test_notebook_is_committed_clean_with_literal_parameters():
    nb = json.loads(notebook_path("studies").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    from lab.params import notebook_defaults

    assert notebook_defaults("studies") == {"study": "l1_vs_mse", "profile": "", "run": False, "workers": 2,
                                            "runs_dir": "", "report": ""}


# -- one tiny combination of each study, end to end -------------------------------------------------------------------

TINY = {"steps": 4, "valid_every": 4, "batch_size": 2, "patch_size": 24, "eval_sets": "", "profile_size": 0,
        "valid_max_size": 48}
TINY_ARMS = {  # one arm per study, chosen to cover its distinct code paths (waves, GAN, banks, measures)
    "l1_vs_mse": "fsrcnn mse + instance norm", "srresnet_norm": "instance norm between distant layers",
    "edsr": "x3 from x2", "lightweight": "imdn_dw 32", "deblur": "squeeze-excitation", "optim": "soft clip 0.2",
    "colour": "linear model, linear loss", "degradations": "realsr (built-in banks)", "upsampler": "transposed conv",
    "gan": "+ vgg + lsgan"}


@pytest.mark.slow
def test_one_tiny_combination_of_each_study_runs(tmp_path):
    assert set(TINY_ARMS) == set(studies.list_studies())
    root = tmp_path / "runs"
    jobs = []
    for name, arm in TINY_ARMS.items():
        planned = studies.plan(name, root=root, arms=[arm], overrides=TINY)
        jobs += [j for j in planned if j.study.seed == 0]
    rows = studies.run_waves(jobs, workers=2, progress=False)
    bad = [(r["name"], r["status"], r.get("error")) for r in rows if r["status"] != "done"]
    assert not bad
    assert len(rows) == len(TINY_ARMS) + 2, "edsr and gan first train the arm they start from"
    df = ledger.load(root, warn=False)
    for name, arm in TINY_ARMS.items():
        spec = studies.load_study(name)
        assert len(ledger.filter_runs(df, tag=name)) >= 1
        planned = [j for j in studies.plan(name, root=root, arms=[arm], overrides=TINY)]
        table = studies.answer(df, spec, planned)
        assert table.set_index("arm").loc[arm, "n"] == 1, name
    up = studies.study_rows(df, "upsampler", studies.plan("upsampler", arms=["transposed conv"], overrides=TINY))
    assert np.isfinite(up["measure.checkerboard"].iloc[0])
    assert up["measure.checkerboard"].iloc[0] > 0
    gan = studies.plan("gan", arms=["+ vgg + lsgan"], overrides=TINY)
    g = studies.study_rows(df, "gan", gan).set_index("arm")
    assert g.loc["+ vgg + lsgan", "param.init_from"] == str(int(g.loc["l1 generator", "id"]))
    assert g.loc["+ vgg + lsgan", "measure.sharpness"] > 0
    figs = study_report.figures(df, "gan", gan)
    assert set(figs) == {"answer", "grid"}
