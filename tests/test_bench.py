"""`lab bench` measures the right things: the hand loop takes the Learner's steps, FLOP counts are right, tiled
inference is checked against untiled, every section lands in bench.json. Speed itself is never asserted here."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from torch import nn

from lab import bench, runs
from lab.bench import common, quality, steps, summary, tiles
from lab.bench.common import Sizes
from lab.cli import main
from lab.infer import infer
from lab.models import create

TINY = {"num_block": 1, "num_feat": 8}


def test_hand_loop_takes_the_learners_steps():
    """Same init, batches, optimizer settings and schedule: the same loss sequence, step for step (fp32)."""
    r = steps.learner_vs_hand("edsr_baseline", "none", batch=2, patch=8, block=1, rounds=5, seconds=60, warmup=1,
                              model_kw=TINY)
    assert r["losses_compared"] >= 6
    assert r["rounds"] == 5
    assert r["loss_rel_diff_max"] < 1e-5, (r["learner_losses"], r["hand_losses"])
    assert "DivergenceGuard" in r["callbacks"], "the train notebook's default callbacks (guard=True) are in"
    # the comparison can fail: a hand loop on another schedule from the same start takes other steps
    torch.manual_seed(0)
    net = create("edsr_baseline", scale=2, **TINY)
    other = steps.HandLoop(copy.deepcopy(net), steps.make_batches(4, 2, 8, 2, 3, 0), total_steps=7,
                           schedule="constant")
    losses = torch.stack([other() for _ in range(6)]).double()
    learner = torch.tensor(r["learner_losses"][:6], dtype=torch.float64)
    assert losses[0] == pytest.approx(float(learner[0]), rel=1e-5), "same init and batch: same first loss"
    assert ((losses - learner).abs() / learner).max() > 1e-4


def test_flop_count_of_a_known_conv():
    """Two 3x3 convs' training step: two forwards, two weight grads, one input grad (the input needs none),
    2 FLOPs per multiply-add each."""
    convs = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1))
    per_pass = 2 * 2 * 3 * 3 * 9 * 8 * 8  # batch 2, 3 -> 3 channels, 8x8 px
    assert steps.step_flops(convs, batch=2, patch=8, scale=1) == 5 * per_pass
    run, flops = steps.conv_fn("none", channels=4, size=16)
    assert flops == 2 * 4 * 4 * 9 * 16 * 16
    assert run().shape == (1, 4, 16, 16)


def test_tiled_check_on_a_small_input():
    """P5's comparison: at the default context (the receptive field) tiles match untiled inference; with too
    little context they do not (so the check can fail)."""
    torch.manual_seed(0)
    net = create("edsr_baseline", scale=2).eval()
    x = tiles.centre(tiles.frame((60, 100)), side=56)
    c = tiles.compare(net, x, tile=48)
    assert c["max_abs_diff"] <= 1e-5, c
    assert c["max_8bit_levels"] <= 1, c
    assert c["tiled_peak_mb"] is None or c["tiled_peak_mb"] >= 0
    seams = (infer(net, x) - infer(net, x, tile=48, tile_overlap=2)).abs().max()
    assert seams > 1e-3


def test_sections_parse_and_refuse_unknown_names():
    assert bench.parse_sections("p1, p2,P4,p5, P4,LEVERS") == ["P1", "P2", "P4", "P5", "levers"]
    assert bench.parse_sections(None) == list(bench.GOALS)
    with pytest.raises(ValueError, match="accepted: P1"):
        bench.parse_sections("P7")
    with pytest.raises(ValueError, match="unknown bench section 'train'; accepted: P1, P2, P3, P4, P5, P6, models, "
                                         "bicubic, data, levers, export$"):
        bench.parse_sections("train")  # no second set of names for the sections


def test_every_goal_has_summary_rows_and_a_failed_section_is_one_row():
    assert set(bench.GOALS) <= set(summary.ROWS)
    assert bench.summarise("P6", {"error": "OSError: disk full", "traceback": "..."}) == [
        {"goal": "P6", "measured": "failed: OSError: disk full", "target": "", "met": "?"}]
    assert bench.summarise("models", [{"model": "srcnn"}]) == [], "an extra without rows shows only when it fails"
    assert summary.ok(0.96, 0.95) == "yes"
    assert summary.ok(0.94, 0.95) == "no"
    assert summary.ok(float("nan"), 0.95) == "?"
    assert summary.ok(0.5, 0.6, higher=False) == "yes"


def test_refuses_while_another_run_is_active(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(common, "lab_processes", lambda: [])
    run = runs.create({"model": "srcnn"}, root=tmp_path, name="busy")  # status running, this live process
    with pytest.raises(bench.OtherRunsActive, match="--force"):
        bench.run_bench(["P6"])
    assert main(["bench", "P6", "--json", str(tmp_path / "b.json")]) == 2
    assert not (tmp_path / "b.json").exists()
    run.finish({})
    assert common.active_runs() == []


TINY_SIZES = Sizes(quick=True, batch=2, patch=16, seconds=0.5, learner_seconds=0.5, rounds=3, ledger_runs=12,
                   ledger_epochs=5, papermill_repeats=1, data_batches=2, tile_seconds=1.0, frame=(128, 128),
                   tile_models=("edsr_baseline",), quality_steps=2, model_kw=TINY, conv_size=32)


@pytest.mark.slow
def test_bench_json_has_every_section(tmp_path, monkeypatch):
    """Every goal P1-P6 runs (tiny sizes, a tiny demo) and lands in bench.json and the summary table."""
    monkeypatch.setattr(quality, "demo_params", lambda: (
        {"model_kwargs": TINY, "data": "builtin:astronaut", "patch_size": 12, "batch_size": 2, "profile_size": 0},
        "a tiny demo"))
    monkeypatch.setattr(common, "lab_processes", lambda: [])
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "runs"))
    png = tmp_path / "curve.png"
    report = bench.run_bench(bench.GOALS, sizes=TINY_SIZES, png=png, log=lambda s: None)
    path = bench.write_report(report, tmp_path / "bench.json")
    saved = json.loads(path.read_text())
    res = saved["results"]
    assert set(res) == set(bench.GOALS)
    assert not [k for k, v in res.items() if "error" in v]
    assert {r["amp"] for r in res["P1"]} == {"fp32", "bf16"}
    assert res["P2"]["fp32_gflops_s"] > 0
    assert res["P2"]["step_gflop"] > 0
    waits = [r for r in res["P3"] if "data_fraction_of_step" in r]
    assert {(r["preset"], r["workers"] > 0) for r in waits} == {(p, w) for p in ("bicubic", "second_order")
                                                                for w in (False, True)}
    feeds = {(r["preset"], r["degrade_on"]) for r in res["P3"] if "patches_per_s" in r}
    assert feeds == {(p, w) for p in ("bicubic", "second_order", "realsr") for w in ("loader", "device")}
    assert res["P4"]["status"] == "done"
    assert len(res["P4"]["points"]) >= 2
    assert png.stat().st_size > 0
    assert all(p["train_minutes"] <= p["wall_minutes"] for p in res["P4"]["points"])
    assert res["P5"][0]["compare"]["max_abs_diff"] <= 1e-5
    assert res["P6"]["ledger"]["runs"] == 12
    assert res["P6"]["papermill"]["one_cell_run_s"] > 0
    assert saved["machine"]["torch_threads"] == torch.get_num_threads()
    goals = {row["goal"].split()[0] for row in saved["summary"]}
    assert goals == set(bench.GOALS)
    text = bench.table(report)
    assert "P1 Learner / hand loop, fp32" in text
    assert os.fspath(png) in text


def test_step_levers_time_the_demos_step_three_ways_from_the_same_weights():
    """`lab bench levers`: eager, channels_last and compiled steps of the demo's model start from one init, so their
    first losses agree; aot_eager (no C++ build) stands in for inductor, which the bench itself uses."""
    res = steps.bench_step_levers(TINY_SIZES, backend="aot_eager")
    params, _ = common.demo_params()
    assert res["model"] == params["model"]
    assert res["model_kwargs"]["num_feat"] == TINY["num_feat"]
    assert res["first_loss_rel_diff"] < 1e-5, res
    assert res["channels_last_speedup"] > 0
    assert res["compiled_speedup"] > 0
    assert res["rounds"] >= 3
    row = bench.summarise("levers", res)[0]
    assert "torch.compile (aot_eager)" in row["measured"]


def test_p6_times_the_reader_before_summaries_and_the_cached_one_on_the_same_rows():
    from lab.bench import ledger_scale

    res = ledger_scale.bench_ledger(TINY_SIZES)
    assert res["runs"] == TINY_SIZES.ledger_runs
    assert res["same_as_old"] is True, "the summaries and the cache give the rows a full read gives"
    assert min(res["old_s"], res["first_s"], res["warm_s"], res["fresh_s"]) > 0
    rows = bench.summarise("P6", {"ledger": res, "papermill": {"to_first_cell_s": 1.0, "one_cell_run_s": 1.5}})
    assert "the reader before summaries" in rows[0]["measured"]


def test_p3_feed_rates_in_the_loader_and_batched_on_the_device():
    from lab.bench.data import feed_rate

    loader = feed_rate("bicubic", "loader", 0, batches=2, batch=2, patch=16)
    device = feed_rate("bicubic", "device", 0, batches=2, batch=2, patch=16)
    assert loader["patches_per_s"] > 0
    assert device["patches_per_s"] > 0
    refused = feed_rate("bicubic", "gpu", 0, batches=1, batch=2, patch=16)
    assert "degrade_on must be one of" in refused["error"]
    rows = summary.ROWS["P3"]([loader, device, refused])
    assert [r["measured"].split(" ")[0] for r in rows[:2]] == [f"{loader['patches_per_s']:.0f}",
                                                                f"{device['patches_per_s']:.0f}"]
    assert rows[2]["measured"].startswith("not measured")
