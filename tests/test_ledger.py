"""The ledger: one row per run; corrupt and half-written runs are reported, not fatal; dead runs detected."""

import json
import os
import shutil
import time

import pandas as pd
import pytest

from lab import ledger, report, runs


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
    assert "missing" in problems["0003-half"]
    assert "corrupt" in problems[bad.name]


def test_dead_running_run_is_interrupted(tmp_path):
    r = runs.create({}, root=tmp_path)
    st = r.read("status.json")
    st["pid"] = 2**22 + 12345  # no such process
    r.write_json("status.json", st)
    assert ledger.load(tmp_path).loc[0, "status"] == "interrupted"


def test_empty_ledger(tmp_path):
    df = ledger.load(tmp_path / "none")
    assert df.empty
    assert "status" in df.columns


# -- notes, tags, verdicts ----------------------------------------------------------------------------------------

def _write_notes(args):
    run_dir, worker, n = args
    for i in range(n):
        runs.add_note(run_dir, f"w{worker} note {i}", tags=[f"w{worker}"])
    return worker


def test_notes_under_concurrent_writers_lose_nothing(tmp_path):
    import multiprocessing as mp

    run = runs.create({"model": "srcnn"}, root=tmp_path)
    # spawn, not fork: a fork of this multi-threaded test process (torch, OpenMP, browsers) can deadlock a child
    with mp.get_context("spawn").Pool(8) as pool:
        # a worker that cannot start would leave a bare map() waiting forever: fail after a bound instead
        pool.map_async(_write_notes, [(str(run.dir), w, 20) for w in range(8)]).get(timeout=120)
    recs = runs.read_notes(run.dir)
    texts = [r["text"] for r in recs]
    assert len(texts) == 160
    assert len(set(texts)) == 160
    for w in range(8):  # each writer's notes kept in its own order
        mine = [t for t in texts if t.startswith(f"w{w} ")]
        assert mine == [f"w{w} note {i}" for i in range(20)]
    files = sorted((run.dir / runs.NOTES_DIR).glob("*.json"))
    assert len(files) == 160, "every note one whole file"
    assert all(json.loads(f.read_text()) for f in files), "every note one whole file"
    assert not list(run.dir.rglob("*.tmp")), "no temp file left behind"
    assert ledger.load(tmp_path).loc[0, "tags"] == ", ".join(f"w{w}" for w in range(8))


def test_tags_verdicts_and_notes_in_ledger(tmp_path):
    a = runs.create({"model": "srcnn", "notes": "first try"}, root=tmp_path, name="a")
    a.finish({"psnr_y": 30.0})
    runs.add_note(1, "lines smeared", tags=["failed", "smear"], root=tmp_path)
    runs.add_note(a, verdict="rejected")
    runs.add_note(a, untag=["smear"], verdict="chosen")
    row = ledger.load(tmp_path).iloc[0]
    assert row["tags"] == "failed"
    assert row["verdict"] == "chosen"
    assert row["notes"] == "first try | lines smeared"
    runs.add_note(a, verdict="")
    assert pd.isna(ledger.load(tmp_path).iloc[0]["verdict"])
    with pytest.raises(ValueError, match="nothing to record"):
        runs.add_note(a)
    with pytest.raises(ValueError, match="','"):
        runs.add_note(a, tags=["a,b"])
    with pytest.raises(FileNotFoundError, match="no run with id 9"):
        runs.add_note(9, "x", root=tmp_path)


def test_tags_a_run_was_made_with_count_like_notes(tmp_path):
    a = runs.create({}, root=tmp_path)
    a.update_meta(tags=["l1_vs_mse"])  # what a study's runs carry (lab.sweep: a spec's `tags`)
    runs.create({}, root=tmp_path)
    df = ledger.load(tmp_path)
    assert list(ledger.filter_runs(df, tag="l1_vs_mse")["id"]) == [1]
    a.add_note(untag=["l1_vs_mse"], tags=["kept"])
    assert ledger.load(tmp_path).loc[0, "tags"] == "kept", "a note can still take the tag away"


def test_torn_notes_line_is_skipped(tmp_path):
    run = runs.create({}, root=tmp_path)
    runs.add_note(run, "kept", tags=["t"])
    with open(run.dir / runs.NOTES_FILE, "a") as f:
        f.write('{"text": "half wri')
    assert [r["text"] for r in runs.read_notes(run)] == ["kept"]
    assert ledger.load(tmp_path).loc[0, "tags"] == "t"


# -- what changed, cost, timing, status ---------------------------------------------------------------------------

def test_what_changed_vs_parent_baseline_and_previous(tmp_path):
    runs.create({"model": "edsr", "lr": 1e-3, "loss": "l1"}, root=tmp_path, notebook="train.ipynb")
    runs.create({"model": "edsr", "lr": 5e-4, "loss": "l1"}, root=tmp_path, notebook="train.ipynb")
    runs.create({"model": "edsr", "lr": 1e-3, "loss": "mse"}, root=tmp_path, notebook="train.ipynb", parent=1)
    runs.create({"model": "edsr", "lr": 1e-3, "loss": "l1"}, root=tmp_path, notebook="train.ipynb", parent=1)
    runs.create({"source": "x"}, root=tmp_path, notebook="evaluate.ipynb", parent=2)
    df = ledger.load(tmp_path)
    ch = dict(zip(df["id"], df["changed"]))
    assert pd.isna(ch[1])  # nothing before it
    assert ch[2] == "vs #1: lr 0.001→0.0005"  # previous run of the same notebook
    assert ch[3] == "vs #1: loss l1→mse"  # the parent wins over the previous run
    assert ch[4] == "vs #1: same params"
    assert ch[5] == "from #2 (train.ipynb)"
    base = ledger.load(tmp_path, baseline=2)
    assert dict(zip(base["id"], base["changed"]))[1] == "vs #2: lr 0.0005→0.001"
    again = ledger.what_changed(df, baseline=2)
    assert list(again) == list(base["changed"])


def test_describe_change_reads_the_same_whatever_the_key_order():
    a = {"lr": 1e-3, "model_kwargs": {"num_feat": 8, "act": "relu"}, "seed": 1, "flag": True}
    b = {"lr": 5e-4, "model_kwargs": {"num_feat": 16, "act": "relu"}, "seed": 1, "flag": False}
    text = ledger.describe_change(b, a, 3)
    assert text == "vs #3: lr 0.001→0.0005, model_kwargs.num_feat 8→16, flag true→false"
    assert ledger.describe_change(dict(reversed(list(b.items()))), a, 3).split(": ")[1].split(", ") == \
        ["flag true→false", "model_kwargs.num_feat 8→16", "lr 0.001→0.0005"]
    assert ledger.describe_change({**b, "extra": None}, a, 3).endswith("extra ∅→null")


def test_nested_params_are_their_exact_json_text(tmp_path):
    values = [[1, True], [1, 1], [1.0, 1], [float("nan")], {"a": [0.9, 0.999]}, {"a": [0.9, 0.999]}, ["1", 1], None]
    for v in values:
        runs.create({"model": "edsr", "betas": v}, root=tmp_path, notebook="train.ipynb")
    got = ledger.load(tmp_path, cache=False)["param.betas"].tolist()
    assert got[:-1] == [json.dumps(v) for v in values[:-1]], "equal-looking values keep their own JSON"
    assert got[-1] is None or pd.isna(got[-1])


def test_describe_change_is_short():
    p = {f"k{i}": i for i in range(30)}
    text = ledger.describe_change(p, {}, 7, max_len=60)
    assert text.startswith("vs #7: k0 ∅→0")
    assert len(text) <= 60 + 12
    assert "more)" in text


def test_cost_timing_and_status_columns(tmp_path):
    a = runs.create({"model": "srcnn"}, root=tmp_path)
    a.write_json("profile.json", {"params": 8129, "gflops": 0.5, "ms_fp32": 3.0})
    a.finish({"valid_psnr_y": 30.0})
    b = runs.create({"model": "edsr"}, root=tmp_path)
    b.finish({"valid_psnr_y": float("nan"), "params": 100, "gflops": 2.0, "forward_ms": 9.0})
    c = runs.create({}, root=tmp_path)
    st = c.read("status.json")
    st.update(host="another-host", heartbeat="2020-01-01T00:00:00+00:00")
    c.write_json("status.json", st)
    d = runs.create({}, root=tmp_path)
    d.set_status("diverged", error={"type": "Divergence", "message": "loss is nan"})
    df = ledger.load(tmp_path).set_index("id")
    assert (df.loc[1, "cost.params"], df.loc[1, "cost.gflops"], df.loc[1, "cost.forward_ms"]) == (8129, 0.5, 3.0)
    assert (df.loc[2, "cost.params"], df.loc[2, "cost.forward_ms"]) == (100, 9.0)
    assert df.loc[1, "status"] == "done"
    assert df.loc[1, "duration_s"] >= 0
    assert df.loc[2, "status"] == "diverged", "a finished run with a NaN PSNR diverged"
    assert df.loc[3, "status"] == "interrupted", "no heartbeat for years on another host"
    assert df.loc[3, "heartbeat_age_s"] > 3600
    assert df.loc[4, "status"] == "diverged"
    assert df.loc[4, "error"] == "loss is nan"
    assert ledger.load(tmp_path, stale_after=1e12).set_index("id").loc[3, "status"] == "running"
    assert list(ledger.filter_runs(df.reset_index(), status=["diverged"])["id"]) == [2, 4]
    with pytest.raises(ValueError, match="accepted"):
        ledger.filter_runs(df, status="finished")


def test_load_many_synthetic_runs(tmp_path):
    """Many run directories load into one row each (how fast: `lab bench P6`, 10,000 runs)."""
    from lab.bench.ledger_scale import write_synthetic_runs

    write_synthetic_runs(tmp_path, 300)
    df = ledger.load(tmp_path)
    assert len(df) == 300
    assert df["id"].is_unique
    assert df["duration_s"].eq(300).all()
    assert df["param.lr"].nunique() == 3
    assert df["metric.valid_psnr_y"].between(30, 31).all()


# -- exports and the CLI ------------------------------------------------------------------------------------------

@pytest.fixture
def small_ledger(tmp_path):
    a = runs.create({"model": "srcnn", "data": "builtin", "scale": 2, "lr": 1e-3}, root=tmp_path, name="a")
    a.write_json("history.json", [{"epoch": 0, "train_loss": 0.1, "valid_loss": 0.09, "psnr_y": 28.0},
                                  {"epoch": 1, "train_loss": 0.05, "valid_loss": 0.06, "psnr_y": 29.0}])
    a.finish({"valid_psnr_y": 29.0, "valid_ssim_y": 0.85, "valid_gain_psnr_y": 1.5, "gflops": 0.5, "params": 8000})
    b = runs.create({"model": "edsr", "data": "builtin", "scale": 2, "lr": 1e-3}, root=tmp_path, name="b <b>")
    b.finish({"valid_psnr_y": 30.5, "valid_ssim_y": 0.88, "gflops": 5.0, "params": 1_000_000})
    c = runs.create({"model": "edsr", "data": "builtin", "scale": 2, "lr": 5e-3}, root=tmp_path, name="c")
    c.fail(RuntimeError("exploded"), cell=7)
    runs.add_note(b, "sharper edges", tags=["keep"], verdict="chosen")
    return tmp_path


def test_markdown_export_is_the_experiment_log(small_ledger, tmp_path):
    df = ledger.load(small_ledger)
    text = report.to_markdown(df, tmp_path / "log.md")
    assert (tmp_path / "log.md").read_text() == text
    date = df.loc[0, "date"].strftime("%Y-%m-%d")
    assert f"## #1 : a : {date}" in text
    assert "## #2 : b <b> : " in text
    assert "(chosen)" in text
    assert "- data: builtin, x2" in text
    assert "- what changed: vs #1: model srcnn→edsr" in text
    assert "- results: valid PSNR-Y 29.00 dB / SSIM 0.8500 (+1.50 dB vs bicubic)" in text
    assert "- notes: sharper edges" in text
    assert "- verdict: chosen" in text
    assert "**failed** in cell 7: exploded" in text


def test_csv_and_html_exports(small_ledger, tmp_path):
    import base64

    df = ledger.load(small_ledger)
    back = pd.read_csv(report.export(df, tmp_path / "ledger.csv"))
    assert list(back["id"]) == [1, 2, 3]
    assert list(back["status"]) == ["done", "done", "failed"]
    assert back.loc[1, "tags"] == "keep"
    assert back.loc[0, "metric.valid_psnr_y"] == 29.0
    page = report.export(df, tmp_path / "report.html").read_text()
    imgs = page.split("data:image/png;base64,")[1:]
    assert len(imgs) >= 2, "curves and the Pareto plot are embedded"
    for chunk in imgs:
        assert base64.b64decode(chunk.split("'", 1)[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "b &lt;b&gt;" in page, "titles are escaped"
    assert "b <b>" not in page, "titles are escaped"
    assert "http://" not in page, "standalone: no external resources"
    assert "https://" not in page, "standalone: no external resources"
    with pytest.raises(ValueError, match="accepted: md, csv, html"):
        report.export(df, tmp_path / "x.xlsx")


def test_cli_note_ledger_export(small_ledger, tmp_path, capsys):
    from lab.cli import main

    root = str(small_ledger)
    assert main(["note", "1", "lines smeared", "--tag", "failed", "--verdict", "rejected", "--runs", root]) == 0
    assert main(["ledger", "--runs", root, "--tag", "failed"]) == 0
    out = capsys.readouterr().out
    assert "0001-a" in out
    assert "0002-b" not in out
    assert "rejected" in out
    assert main(["note", "1", "--runs", root]) == 0
    assert "'lines smeared'" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "log.md"), "--runs", root, "--status", "done"]) == 0
    text = (tmp_path / "log.md").read_text()
    assert "#1 : a" in text
    assert "#3 : c" not in text
    assert main(["note", "99", "x", "--runs", root]) == 2


# -- summaries and the cache: the fast ledger equals a full read after every kind of change --------------------------

def _same_as_full_read(root):
    """The ledger through summaries and the cache, checked against a full read of every run's files."""
    time.sleep(0.05)  # past the coarse timestamp tick of the last change (RACY_S is lowered for the test)
    fast = ledger.load(root, warn=False)
    full = ledger.load(root, warn=False, cache=False, summaries=False)
    assert fast.attrs["problems"] == full.attrs["problems"]
    pd.testing.assert_frame_equal(fast.drop(columns="heartbeat_age_s"), full.drop(columns="heartbeat_age_s"),
                                  check_like=True, check_dtype=False)
    age = (fast["heartbeat_age_s"] - full["heartbeat_age_s"]).abs()
    assert (age.fillna(0) < 5).all(), "the heartbeat's age is taken at load time"
    return fast


def test_summary_and_cache_equal_a_full_read_after_each_change(tmp_path, monkeypatch):
    from lab.bench.ledger_scale import copy_runs, template_run

    monkeypatch.setattr(ledger, "RACY_S", 0.01)
    monkeypatch.setenv("LAB_LEDGER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "runs"
    template = template_run(root, epochs=4)
    assert template._summary() is not None, "a run written through lab.runs keeps its summary current"
    copy_runs(template, 6)
    stale = root / "0002-edsr-l1-2"  # another process (an older version) replaces a file without the summary
    (stale / "metrics.tmp").write_text(json.dumps({"valid_psnr_y": 31.5}))
    os.replace(stale / "metrics.tmp", stale / "metrics.json")
    assert runs.Run(stale)._summary() is None, "a summary whose files changed is refused"
    _same_as_full_read(root)
    reads = []
    real_row = ledger._row
    monkeypatch.setattr(ledger, "_row", lambda run, *a: reads.append(run.name) or real_row(run, *a))
    ledger.load(root, warn=False)
    assert reads == [], "nothing changed: every finished row comes from the cache"
    new = runs.create({"model": "srcnn", "lr": 1e-3}, root=root, name="added", parent=2)  # added
    new.finish({"valid_psnr_y": 30.0})
    _same_as_full_read(root)
    time.sleep(0.05)
    ledger.load(root, warn=False)
    runs.add_note(3, "annotated", tags=["keep"], verdict="chosen", root=root)  # annotated
    time.sleep(0.05)
    reads.clear()
    ledger.load(root, warn=False)
    assert reads == ["0003-edsr-l1-3"], "only the annotated run is read again"
    df = _same_as_full_read(root)
    assert df.loc[df["id"] == 3, "verdict"].item() == "chosen"
    resumed = runs.Run(root / "0004-edsr-l1-4")  # resumed: running again, then finished with new scores
    resumed.set_status("running")
    _same_as_full_read(root)
    resumed.log_epoch({"epoch": 300, "psnr_y": 37.0})
    resumed.finish({**resumed.metrics, "valid_psnr_y": 37.0})
    df = _same_as_full_read(root)
    assert df.loc[df["id"] == 4, "metric.valid_psnr_y"].item() == 37.0
    shutil.rmtree(root / "0005-edsr-l1-5")  # deleted
    df = _same_as_full_read(root)
    assert 5 not in set(df["id"])
    half = root / "0009-half"  # half-written by another process: meta only
    half.mkdir()
    (half / "meta.json").write_text(json.dumps({"id": 9}))
    df = _same_as_full_read(root)
    assert [p["run"] for p in df.attrs["problems"]] == ["0009-half"]
    (root / "0006-edsr-l1-6" / "summary.json").write_text("{ torn")  # a torn summary: the files are read
    (root / "0006-edsr-l1-6" / "metrics.json").unlink()
    df = _same_as_full_read(root)
    assert ledger.is_missing(df.loc[df["id"] == 6, "metric.valid_psnr_y"].item())


def _summary_file(run):
    return json.loads((run.dir / "summary" / "summary.json").read_text())


def test_a_settled_summary_is_checked_by_its_stamp_and_the_files_that_existed(tmp_path, monkeypatch):
    run = runs.create({"model": "srcnn", "lr": 1e-3}, root=tmp_path, name="a")
    run.finish({"valid_psnr_y": 30.0})
    if _summary_file(run)["stamp"] is None:
        pytest.skip("this file system's clock did not pass the run's last change within SETTLE_WAIT_S: its "
                    "summaries carry no stamp and are checked file by file (tested below)")
    assert _summary_file(run)["stamp"] == list(run.stamp())
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(os.path.basename(p)) or real_stat(p, *a, **k))
    monkeypatch.setattr(runs.Run, "_sources", lambda self: pytest.fail("a settled summary needs no full signature"))
    assert run._summary() is not None
    assert sorted(stats) == sorted([run.name, "notes", "meta.json", "params.json", "status.json", "metrics.json"]), \
        "the stamp's two stats and one per file that existed; none for absent files, no listing"
    monkeypatch.undo()
    time.sleep(0.01)
    (run.dir / "params.json").write_text(json.dumps({"model": "srcnn", "lr": 5e-4}))  # edited in place
    assert run.stamp() == tuple(_summary_file(run)["stamp"]), "an edit in place leaves the directory's stamp"
    assert run._summary() is None, "but not the file's mtime"
    assert run.record().params["lr"] == 5e-4
    run.write_summary()
    (run.dir / "notes.jsonl").write_text(json.dumps({"text": "kept by an older version"}) + "\n")  # appeared
    assert run._summary() is None, "a file that appeared changed the stamp"
    assert [n.get("text") for n in run.record().notes] == ["kept by an older version"]


def test_without_a_stamp_every_signature_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.Run, "_fs_clock", lambda self: -1)  # a clock that never passes the last change
    monkeypatch.setattr("lab.runs.run.SETTLE_WAIT_S", 0.005)
    run = runs.create({"model": "srcnn"}, root=tmp_path, name="a")
    run.finish({"valid_psnr_y": 30.0})
    assert _summary_file(run)["stamp"] is None
    assert run._summary() is not None
    metrics = run.dir / "metrics.json"
    (run.dir / "m.tmp").write_text(json.dumps({"valid_psnr_y": 31.5}))
    os.replace(run.dir / "m.tmp", metrics)  # replaced by another process, no summary written
    assert run._summary() is None
    assert run.record().metrics == {"valid_psnr_y": 31.5}


def test_a_summary_written_before_its_folder_is_still_read(tmp_path):
    run = runs.create({"model": "srcnn"}, root=tmp_path, name="a")
    run.finish({"valid_psnr_y": 30.0})
    old = {k: v for k, v in _summary_file(run).items() if k != "stamp"}
    shutil.rmtree(run.dir / "summary")
    (run.dir / "summary.json").write_text(json.dumps({**old, "version": 1}))  # as an older version left it
    got = run._summary()
    assert got is not None
    assert got.metrics == {"valid_psnr_y": 30.0}
    (run.dir / "m.tmp").write_text(json.dumps({"valid_psnr_y": 31.5}))
    os.replace(run.dir / "m.tmp", run.dir / "metrics.json")
    assert run._summary() is None, "its signatures still guard it"


def test_the_default_view_says_why_a_run_failed_and_the_budget_it_used(tmp_path):
    steps = runs.create({"model": "m", "steps": 1000, "epochs": 5}, root=tmp_path, name="steps")
    steps.finish({})
    epochs = runs.create({"model": "m", "steps": 0, "epochs": 5}, root=tmp_path, name="epochs")
    epochs.finish({})
    timed = runs.create({"model": "m", "time_budget": 2.5, "steps": 1000, "epochs": 5}, root=tmp_path, name="min")
    timed.fail(ValueError("unknown loss term 'nope' in 'l1 + nope'; known terms: l1, mse, charbonnier, msssim, edge"))
    df = ledger.load(tmp_path)
    v = ledger.view(df)
    assert list(v["budget"]) == ["1000 steps", "5 epochs", "2.5 min"]
    one = runs.create({"model": "m", "steps": 0, "epochs": 1}, root=tmp_path / "one", name="one")
    assert list(ledger.view(ledger.load(one.dir.parent))["budget"]) == ["1 epoch"]
    assert v["error"].iloc[2].startswith("unknown loss term 'nope'")
    assert len(v["error"].iloc[2]) <= 60, "one line in the table; the whole message is in the run"
    assert list(v["error"].iloc[:2]) == ["", ""], "a run that did not fail shows no error"


def test_unknown_columns_are_refused_with_the_known_ones(tmp_path, monkeypatch, capsys):
    from lab import cli

    runs.create({"model": "m"}, root=tmp_path, name="a").finish({"valid_psnr_y": 30.0})
    df = ledger.load(tmp_path)
    assert list(ledger.view(df, ["id", "model", "metric.valid_psnr_y"], strict=True).columns) == \
        ["id", "model", "valid_psnr_y"], "full and short names both work"
    with pytest.raises(ValueError, match=r"unknown column\(s\) 'nope'; known: .*valid_psnr_y"):
        ledger.view(df, ["id", "nope"], strict=True)
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    assert cli.main(["ledger", "--columns", "id,nope"]) == 2
    assert "unknown column(s) 'nope'" in capsys.readouterr().err
