"""The ledger: one row per run; corrupt and half-written runs are reported, not fatal; dead runs detected."""

import json

import pytest

from lab import ledger, runs


def test_rows_params_metrics_and_problems(tmp_path):
    a = runs.create({"model": "srcnn", "lr": 0.1}, root=tmp_path, name="a")
    a.finish({"psnr_y": 31.5})
    b = runs.create({"model": "edsr_baseline", "model_kwargs": {"num_block": 4}}, root=tmp_path, name="b")
    b.finish({"psnr_y": 33.0})
    half = tmp_path / "0003-half"
    half.mkdir()
    (half / "meta.json").write_text("{}")
    bad = runs.create({}, root=tmp_path, name="bad")
    (bad.dir / "params.json").write_text("{not json")
    with pytest.warns(UserWarning, match="skipped"):
        df = ledger.load(tmp_path)
    assert list(df["id"]) == [1, 2]
    assert list(df["param.model"]) == ["srcnn", "edsr_baseline"]
    assert json.loads(df.loc[1, "param.model_kwargs"]) == {"num_block": 4}
    assert list(df["metric.psnr_y"]) == [31.5, 33.0]
    problems = {p["run"]: p["problem"] for p in df.attrs["problems"]}
    assert "missing" in problems["0003-half"] and "corrupt" in problems[bad.name]


def test_dead_running_run_is_interrupted(tmp_path):
    r = runs.create({}, root=tmp_path)
    st = r.read("status.json")
    st["pid"] = 2**22 + 12345  # no such process
    r.write_json("status.json", st)
    assert ledger.load(tmp_path).loc[0, "status"] == "interrupted"


def test_empty_ledger(tmp_path):
    df = ledger.load(tmp_path / "none")
    assert df.empty and "status" in df.columns
