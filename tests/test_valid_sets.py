"""Several validation sets during training: a column each in the history, and `monitor` picks best.pth."""

from __future__ import annotations

import pytest
import torch

from lab import data, learner, models, recording, runs, training
from lab.checks import check_names


def _fit(run, valid, monitor, epochs=3):
    torch.manual_seed(0)
    dls = data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8, valid=valid,
                           valid_max_size=32, seed=5)
    net = models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)
    lrn = learner.restoration_learner(dls, net, loss="l1", lr=2e-3, path=run.dir,
                                      cbs=recording.record_run(run, monitor=monitor))
    lrn.remove_cb(lrn.progress)
    with lrn.no_logging():
        training.fit(lrn, epochs, 2e-3, "constant", run=run)
    return lrn


def test_two_validation_sets_give_two_columns_and_best_follows_monitor(tmp_path):
    run = runs.create({}, root=tmp_path, name="two")
    lrn = _fit(run, "builtin:chelsea; builtin:coffee", "coffee_psnr_y")
    hist = run.history
    assert len(hist) == 3
    for col in ("psnr_y", "ssim_y", "coffee_psnr_y", "coffee_ssim_y"):
        assert all(col in h for h in hist), f"{col} in every history row"
    assert any(h["psnr_y"] != h["coffee_psnr_y"] for h in hist), "two sets, two scores"
    best = torch.load(run.checkpoint("best"), weights_only=True)
    top = max(hist, key=lambda h: h["coffee_psnr_y"])
    assert best["epoch"] == top["epoch"], "best.pth is the epoch the monitored set scored highest"
    assert best["coffee_psnr_y"] == pytest.approx(top["coffee_psnr_y"])
    coffee = data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8,
                              valid="builtin:coffee", valid_max_size=32)
    psnr_y = lrn.validate(dl=coffee.valid)[1]  # [valid_loss, psnr_y, ...] of the first set's metrics
    assert hist[-1]["coffee_psnr_y"] == pytest.approx(psnr_y, abs=1e-4), "scored as the first set is"


def test_a_monitor_that_names_no_column_is_refused():
    with pytest.raises(ValueError, match="accepted: valid_loss, psnr_y, ssim_y, set5_psnr_y, set5_ssim_y"):
        check_names({"valid": "split:0.05; Set5", "monitor": "set14_psnr_y"})
    with pytest.raises(ValueError, match="at most one held-out split"):
        check_names({"valid": "split:0.05; split:0.1"})
    with pytest.raises(ValueError, match="share the column name"):
        check_names({"valid": "builtin:chelsea; Set5; a/Set5"})


def test_further_sets_are_labelled_by_their_inputs_and_scored_whole_after_training(tmp_path):
    from lab import evaluate

    kw = {"scale": 2, "patch_size": 12, "batch_size": 4, "repeat": 8, "valid": "builtin:chelsea; builtin:coffee"}
    clean = data.dataloaders("builtin:astronaut", **kw)
    assert clean.extra_valid_specs == {"coffee": "builtin:coffee"}, "the benchmark's bicubic: the set's own name"
    blurred = data.dataloaders("builtin:astronaut", degradation="blur_bicubic", **kw)
    assert list(blurred.extra_valid) == ["coffee@blur_bicubic"], "other inputs: a name that says so"
    assert list(data.dataloaders("builtin:astronaut", degradation="blur_bicubic", valid_degradation="bicubic",
                                 **kw).extra_valid) == ["coffee"]
    check_names({"valid": kw["valid"], "degradation": "blur_bicubic", "monitor": "coffee@blur_bicubic_psnr_y"})
    sets = evaluate.task_sets("builtin:chelsea", "coffee@blur_bicubic, Set5", 2, blurred.valid_degradation,
                              {**blurred.extra_valid_specs, "set5": "Set5"})
    assert list(sets) == ["valid", "coffee@blur_bicubic", "Set5"], "a set an eval set scores is not scored twice"
    run = runs.create({}, root=tmp_path, name="two")
    lrn = _fit(run, kw["valid"], "coffee_psnr_y", epochs=1)
    sets = evaluate.task_sets(lrn.dls.valid_source, "", 2, lrn.dls.valid_degradation, lrn.dls.extra_valid_specs)
    _, scores, _ = evaluate.evaluate_sets(lrn.model.eval(), sets, 2, show=False)
    whole = data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8,
                             valid="builtin:coffee", valid_max_size=None)
    assert scores["coffee_psnr_y"] == pytest.approx(lrn.validate(dl=whole.valid)[1], abs=1e-3), \
        "the further set is scored on its whole image after training, as the first set is"
    assert scores["coffee_psnr_y"] != pytest.approx(run.history[-1]["coffee_psnr_y"], abs=1e-3), \
        "not the centre crop that validation during training scores"
