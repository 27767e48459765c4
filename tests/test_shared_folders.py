"""A runs folder shared by a team and by processes is neither lossy nor an attack surface: run ids, run creation
and notes rely on atomic mkdir and rename only (no file locks, which network file systems may not honour), titles
and notes are text wherever they become HTML, nothing read from a run folder can run code."""

from __future__ import annotations

import multiprocessing as mp
import re
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from lab import ledger, report, runs, sweep, widgets
from lab.utils import PROJECT_ROOT

EVIL = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def _allocate_after(args):
    root, barrier = args
    barrier.wait(timeout=60)  # every process starts allocating at the same instant
    return runs.allocate_id(root)


def _create_after(args):
    root, barrier, i = args
    barrier.wait(timeout=120)
    return runs.create({"i": i}, root=root).name


def test_eight_runs_started_at_the_same_instant_never_collide(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(8) as pool:
        for rnd in range(3):  # repeated: a race that loses once in a while must show up
            barrier = manager.Barrier(8)
            ids = pool.map_async(_allocate_after, [(str(tmp_path / f"ids{rnd}"), barrier)] * 8).get(timeout=120)
            assert sorted(ids) == list(range(1, 9)), ids
        barrier = manager.Barrier(8)
        names = pool.map_async(_create_after, [(str(tmp_path / "runs"), barrier, i) for i in range(8)]).get(300)
    assert sorted(int(n.split("-")[0]) for n in names) == list(range(1, 9))
    df = ledger.load(tmp_path / "runs")
    assert len(df) == 8
    assert sorted(df["param.i"]) == list(range(8))
    assert not df.attrs["problems"]


def test_eight_concurrent_lab_note_commands_keep_all_eight(tmp_path):
    run = runs.create({}, root=tmp_path)
    procs = [subprocess.Popen([sys.executable, "-m", "lab.cli", "note", str(run.id), f"note {i}", "--tag", f"t{i}",
                               "--runs", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(8)]
    assert all(p.wait(timeout=120) == 0 for p in procs), [p.stderr.read() for p in procs]
    assert sorted(r["text"] for r in run.notes()) == [f"note {i}" for i in range(8)]
    assert ledger.load(tmp_path).loc[0, "tags"] == ", ".join(f"t{i}" for i in range(8))


@pytest.mark.slow
def test_two_sweeps_on_one_folder_at_once_lose_nothing(quick, tmp_path):
    tables = {}

    def go(tag):
        spec = {"notebook": str(quick), "sweep": tag, "grid": {"x": [1, 2, 3]}}
        tables[tag] = sweep.sweep(spec, workers=2, root=tmp_path / "runs", progress=False)

    threads = [threading.Thread(target=go, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    df = ledger.load(tmp_path / "runs")
    assert len(df) == 6
    assert df["id"].is_unique
    assert set(df["status"]) == {"done"}
    assert sorted(df["sweep"]) == ["a"] * 3 + ["b"] * 3
    assert all(sorted(t["y"]) == [2, 4, 6] for t in tables.values())


def test_the_lab_relies_on_mkdir_and_rename_not_locks():
    uses = [f"{p.relative_to(PROJECT_ROOT)}" for p in (PROJECT_ROOT / "lab").rglob("*.py")
            if re.search(r"\b(flock|lockf)\(", p.read_text())]
    assert not uses, f"file locks are not reliable on network file systems: {uses}"


def test_titles_notes_and_tags_are_text_wherever_they_become_html(tmp_path):
    run = runs.create({"model": "srcnn", "name": EVIL}, root=tmp_path, name=EVIL)
    run.add_note(EVIL, tags=["<b>bold</b>"])
    run.finish({"valid_psnr_y": 30.0})
    df = ledger.load(tmp_path)
    page = report.export(df, tmp_path / "report.html").read_text()
    assert "<script>" not in page
    assert "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page
    assert "<script>" not in ledger.view(df)._repr_html_()
    imgs = {EVIL: np.zeros((8, 8, 3), np.uint8), "HR": np.full((8, 8, 3), 255, np.uint8)}
    caption = widgets.SwipeCompare(imgs).caption.value
    assert "<script>" not in caption
    assert "&lt;script&gt;" in caption


def test_a_run_folder_cannot_make_the_ledger_run_code(tmp_path):
    import torch

    run = runs.create({"model": "srcnn"}, root=tmp_path)

    class Payload:
        def __reduce__(self):
            return (pytest.fail, ("a pickle in a run folder was executed",))

    run.checkpoint("last").parent.mkdir(parents=True)
    torch.save({"x": Payload()}, run.checkpoint("last"))
    torch.save({"x": Payload()}, run.dir / "extra.pkl")
    assert len(ledger.load(tmp_path)) == 1  # reads JSON only
    from lab.models import read_checkpoint

    with pytest.raises(ValueError, match="could run code"):
        read_checkpoint(run.checkpoint("last"))
    pd.testing.assert_frame_equal(ledger.load(tmp_path)[["id"]], pd.DataFrame({"id": [1]}))
