"""Evaluation judges on inputs degraded the way the task degrades them, beside a baseline that means something."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lab import evaluate, runs
from lab.data import builtin_images


class Identity(nn.Module):
    """A 'model' that returns its input (scale 1): it scores exactly the baseline of a same-size task."""

    in_ch, scale = 3, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_same_size_task_has_a_finite_baseline_the_degraded_input():
    pairs = builtin_images(["chelsea"])
    df = evaluate.evaluate_pairs(Identity(), pairs, 1, degradation="deblur_motion", label="valid")
    assert df.attrs["baseline"] == "degraded input"
    assert np.isfinite(df["baseline_psnr_y"]).all()
    assert df["baseline_psnr_y"].iloc[0] < 45
    assert df["psnr_y"].iloc[0] == pytest.approx(df["baseline_psnr_y"].iloc[0], abs=1e-9)
    assert df["gain_psnr_y"].iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_a_degradation_that_does_nothing_gives_nan_not_infinity():
    pairs = builtin_images(["chelsea"])
    with pytest.warns(UserWarning, match="equals the HR"):
        df = evaluate.evaluate_pairs(None, pairs, 1, degradation={"preset": "denoise_gaussian", "sigma_255": 0.0})
    assert np.isnan(df["baseline_psnr_y"].iloc[0])


def test_degraded_set_variants_are_identical_across_runs_and_kept_beside_them(tmp_path):
    pairs = builtin_images(["chelsea"])
    a, b = (runs.create({}, root=tmp_path, name=n) for n in "ab")
    for run in (a, b):
        evaluate.evaluate_pairs(None, pairs, 2, degradation="blur_bicubic", run=run, label="photos@blur_bicubic")
    lr_a = a.eval_reference("photos@blur_bicubic", "chelsea", "lr").read_bytes()
    assert lr_a == b.eval_reference("photos@blur_bicubic", "chelsea", "lr").read_bytes()
    clean = evaluate.evaluate_pairs(None, pairs, 2, label="photos")
    blurred = evaluate.evaluate_pairs(None, pairs, 2, degradation="blur_bicubic", label="photos@blur_bicubic")
    assert clean["lr_seed"].isna().all(), "the seed is recorded"
    assert blurred["lr_seed"].notna().all(), "the seed is recorded"
    assert blurred["baseline_psnr_y"].iloc[0] < clean["baseline_psnr_y"].iloc[0]


def test_set_syntax_and_the_sets_a_training_run_is_judged_on():
    assert evaluate.parse_sets("Set5, Set5@blur_bicubic, builtin:chelsea") == {
        "Set5": ("Set5", None), "Set5@blur_bicubic": ("Set5", "blur_bicubic"),
        "builtin-chelsea": ("builtin:chelsea", None)}
    deg = {"preset": "deblur_motion", "scale": 1}
    sets = evaluate.task_sets("builtin:chelsea", "Set5, Set5@jpeg", 1, deg)
    assert sets == {"valid": ("builtin:chelsea", deg), "Set5@deblur_motion": ("Set5", deg), "Set5@jpeg": ("Set5", "jpeg")}
    assert evaluate.task_sets("builtin:chelsea", "Set5", 2, deg)["Set5"] == ("Set5", None), "SR: the published LR"


@pytest.mark.reference
def test_plain_benchmark_keeps_its_published_bicubic_baseline(set5_dir):
    df = evaluate.evaluate_benchmark(None, set5_dir, 2)
    assert df["baseline_psnr_y"].mean() == pytest.approx(33.66, abs=0.02)
    assert df["lr_seed"].isna().all()
    blurred = evaluate.evaluate_benchmark(None, set5_dir, 2, degradation="blur_bicubic", label="Set5@blur_bicubic")
    assert blurred["baseline_psnr_y"].mean() < df["baseline_psnr_y"].mean() - 0.5


def test_weights_to_fine_tune_from_follow_the_phase(tmp_path):
    plain, gan = runs.create({}, root=tmp_path, name="plain"), runs.create({}, root=tmp_path, name="gan")
    for run, names in ((plain, ["best", "last", "final"]), (gan, ["best", "last", "final"])):
        run.checkpoint("last").parent.mkdir(parents=True, exist_ok=True)
        for n in names:
            run.checkpoint(n).write_bytes(b"x")
    gan.checkpoint("last", "gan").write_bytes(b"x")
    assert plain.weights_checkpoint().name == "best.pth"
    assert gan.weights_checkpoint().name == "final.pth", "a GAN run's result is its adversarial generator"
    assert gan.weights_checkpoint("pretrain").name == "best.pth"
    gan.checkpoint("final").unlink()
    assert gan.weights_checkpoint("gan").name == "gan_last.pth"
    with pytest.raises(FileNotFoundError, match="no adversarial phase"):
        plain.weights_checkpoint("gan")


class Bicubic(nn.Module):
    """A 'model' that upscales with the lab's MATLAB bicubic: it scores exactly the SR baseline."""

    in_ch, scale = 3, 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from lab.resize import imresize_tensor

        return imresize_tensor(x, scale=3)


def test_psnr_rgb_is_recorded_beside_psnr_y_on_the_whole_image():
    pairs = builtin_images(["chelsea"])
    df = evaluate.evaluate_pairs(Bicubic(), pairs, 3, label="valid", progress=False)
    from lab.resize import imresize

    p = evaluate.degrade_pair(pairs[0], 3, None, 0)
    base = imresize(p.lr, scale=3)[: p.hr.shape[0], : p.hr.shape[1]]
    mse = np.mean((base.astype(np.float64) - p.hr.astype(np.float64)) ** 2)  # every pixel and channel, no shave
    assert df["baseline_psnr_rgb"].iloc[0] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-6)
    assert df["psnr_rgb"].iloc[0] == pytest.approx(df["baseline_psnr_rgb"].iloc[0], abs=0.01)  # float vs uint8 bicubic
    assert abs(df["psnr_rgb"].iloc[0] - df["psnr_y"].iloc[0]) > 0.1  # a different yardstick, not a copy
    summary = evaluate.summarize(df, "valid_")
    assert summary["valid_psnr_rgb"] == pytest.approx(df["psnr_rgb"].mean())
    assert summary["valid_baseline_psnr_rgb"] == pytest.approx(df["baseline_psnr_rgb"].mean())
