"""Inference runs compared without ground truth: `lab compare` grids on the same crops, bicubic as the reference; the
ledger notebook's swipe and grid open inference runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lab import ledger
from lab.cli import main
from lab.compare import detailed_box
from lab.images import read_image, write_image
from lab.inference import run_inference
from lab.models import create, save_checkpoint
from lab.plots import compare_grid, reference_images


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "lr" / f"p{i}.png", rng.integers(0, 256, (20, 28, 3), dtype=np.uint8))
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        ck = save_checkpoint(tmp_path / f"m{seed}.pth", create("edsr_baseline", scale=2, num_feat=8, num_block=1))
        runs.append(run_inference(str(ck), [tmp_path / "lr"], tmp_path / f"out{seed}", size="64x48",
                                  runs_root=tmp_path / "runs", progress=False))
    return tmp_path, runs


def test_compare_writes_grids_of_the_same_crops(two_runs, capsys):
    tmp, (a, b) = two_runs
    out = tmp / "cmp"
    assert main(["compare", str(a.id), str(b.id), "--out", str(out), "--side", "24", "--runs", str(tmp / "runs")]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p1.png"]
    assert read_image(out / "p0.png").shape[0] > 50
    assert (out / "compare.csv").is_file()
    assert "hf_vs_bicubic" in capsys.readouterr().out
    assert main(["compare", str(a.id), "--runs", str(tmp / "runs")]) == 2
    assert main(["compare", str(a.id), str(b.id), "--box", "1,2", "--runs", str(tmp / "runs")]) == 2
    assert "--box '1,2'" in capsys.readouterr().err


def test_the_ledger_views_open_inference_runs(two_runs):
    tmp, (a, b) = two_runs
    refs = reference_images(a.dir, "p0", "infer")
    assert set(refs) == {"LR (nearest)", "bicubic"}
    assert refs["bicubic"].shape == (48, 64, 3)
    df = ledger.load(tmp / "runs", warn=False)
    fig = compare_grid(df, "p1", eval_set="infer", side=16)
    assert len(fig.axes) >= 3

    from lab.widgets import CompareRuns

    view = CompareRuns(df, image="p0", eval_set="infer")
    assert view.image_pick.options == ("p0", "p1")
    png = view.static_png()
    assert png[:4] == b"\x89PNG"


def test_detailed_box_finds_the_textured_corner():
    img = np.full((64, 64, 3), 128, np.uint8)
    img[32:, 32:] = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    y, x, h, w = detailed_box(img, 32)
    assert (y, x) == (32, 32)
