"""Resume and fine-tune: a run cut off after an epoch continues to the weights an uninterrupted run reaches;
init_from copies what fits from another run's checkpoint."""

from __future__ import annotations

import pytest
import torch
from fit_helpers import CutAfter

from lab import data, execute, learner, ledger, models, runs, sweep
from lab.callbacks import EMA
from lab.recording import load_resume_state, record_run

TINY_NET = {"num_block": 1, "num_feat": 8}


def _dls(degrade_on="loader"):
    return data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=8,
                            valid="builtin:chelsea", valid_max_size=48, seed=5, degradation="second_order",
                            degrade_on=degrade_on)


def _learn(run, ema=False, degrade_on="loader"):
    torch.manual_seed(0)
    net = models.create("edsr_baseline", scale=2, **TINY_NET)
    cbs = record_run(run) + ([EMA(0.9)] if ema else [])
    learn = learner.restoration_learner(_dls(degrade_on), net, loss="l1", lr=2e-3, cbs=cbs, path=run.dir)
    learn.remove_cb(learn.progress)
    return learn




@pytest.mark.parametrize(("ema", "degrade_on"), [(False, "loader"), (True, "loader"), (False, "device")])
def test_resume_continues_schedule_and_matches_uninterrupted_weights(tmp_path, ema, degrade_on):
    whole, cut = (runs.create({"x": i}, root=tmp_path, name=n) for i, n in enumerate(("whole", "cut")))
    a = _learn(whole, ema, degrade_on)
    assert a.dls.train.dataset.degrade_on == degrade_on
    with a.no_logging():
        learner.fit_schedule(a, 3, 2e-3, "cosine_restarts", cycles=2)

    b = _learn(cut, ema, degrade_on)
    with b.no_logging():
        b.fit(3, 2e-3, cbs=[CutAfter(0), *_sched(b)])  # what fit_schedule does, cut after epoch 0
    assert [h["epoch"] for h in cut.history] == [0]

    c = _learn(cut, ema, degrade_on)  # a fresh process: new model, new learner, state from last.pth
    start = load_resume_state(c, cut.dir / "checkpoints" / "last.pth")
    assert start == 1
    with c.no_logging():
        learner.fit_schedule(c, 3, 2e-3, "cosine_restarts", start_epoch=start, cycles=2)
    assert [h["epoch"] for h in cut.history] == [0, 1, 2]
    assert [h["lr"] for h in cut.history] == pytest.approx([h["lr"] for h in whole.history], rel=1e-9)
    for (k, va), vc in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(va, vc), f"{k} differs after resuming"
    for hw, hc in zip(whole.history, cut.history):
        assert hc["psnr_y"] == pytest.approx(hw["psnr_y"], abs=1e-9)


def _sched(learn):
    return learner.schedule_callbacks(learner.as_budget(learn, 3), 2e-3, "cosine_restarts", cycles=2)


def test_resume_refuses_a_checkpoint_without_optimizer_state(tmp_path):
    run = runs.create({}, root=tmp_path, name="r")
    learn = _learn(run)
    models.save_checkpoint(tmp_path / "w.pth", learn.model)
    with pytest.raises(ValueError, match="only a run's checkpoints/last.pth can be resumed"):
        load_resume_state(learn, tmp_path / "w.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_resume_state(learn, tmp_path / "nope.pth")


def test_init_from_copies_matching_tensors_and_keeps_the_rest(tmp_path):
    x2 = models.create("edsr_baseline", scale=2, **TINY_NET)
    models.save_checkpoint(tmp_path / "x2.pth", x2)
    x3 = models.create("edsr_baseline", scale=3, **TINY_NET)
    got = models.init_from_checkpoint(x3, tmp_path / "x2.pth")
    assert got["skipped"], "the x2 upsampler does not fit x3"
    sd2, sd3 = x2.state_dict(), x3.state_dict()
    assert all(torch.equal(sd3[k], sd2[k]) for k in got["loaded"])
    assert any(k.startswith("body") for k in got["loaded"])
    assert set(got["loaded"]) | set(got["skipped"]) <= set(sd2)
    with pytest.raises(ValueError, match="same architecture"):
        models.init_from_checkpoint(models.create("srcnn"), tmp_path / "x2.pth")


TINY = {"model": "edsr_baseline", "model_kwargs": "{num_block: 1, num_feat: 8}", "data": "builtin:astronaut",
        "repeat": "8", "patch_size": "12", "batch_size": "4", "eval_sets": "", "seed": "3", "schedule": "constant",
        "lr": "2e-3", "profile_size": "16"}


@pytest.mark.slow
@pytest.mark.parametrize("degrade_on", ["loader", "device"])
def test_lab_resume_through_the_train_notebook_matches_an_uninterrupted_run(tmp_path, degrade_on):
    tiny = {**TINY, "degrade_on": degrade_on, "degradation": "second_order"}
    whole = execute.run_notebook("train", {**tiny, "epochs": "2"}, name="whole", root=tmp_path)
    assert whole.status == "done", whole.read("status.json").get("error")
    assert whole.params["degrade_on"] == degrade_on
    cut = execute.run_notebook("train", {**tiny, "epochs": "1"}, name="cut", root=tmp_path)
    # make it look like a 2-epoch run that was killed after its first epoch
    cut.write_json("params.json", {**cut.params, "epochs": 2})
    cut.set_status("interrupted")
    res = sweep.resume(cut.id, root=tmp_path)
    assert res["status"] == "done", res["error"]
    assert [h["epoch"] for h in cut.history] == [0, 1]
    assert cut.metrics["valid_psnr_y"] == pytest.approx(whole.metrics["valid_psnr_y"], abs=1e-9)
    assert (cut.dir / "profile.json").is_file()
    assert cut.metrics["gflops"] > 0
    row = ledger.load(tmp_path).set_index("id").loc[cut.id]
    assert row["status"] == "done"
    assert row["cost.gflops"] == cut.metrics["gflops"]


@pytest.mark.slow
def test_lab_resume_continues_an_adversarial_phase_cut_midway(tmp_path):
    gan = {**TINY, "epochs": "1", "gan": "true", "disc": "disc_simple", "disc_kwargs": "{num_feat: 4, num_layers: 1}",
           "critic_pretrain": "2"}
    whole = execute.run_notebook("train", {**gan, "gan_epochs": "2"}, name="whole", root=tmp_path)
    assert whole.status == "done", whole.read("status.json").get("error")
    cut = execute.run_notebook("train", {**gan, "gan_epochs": "1"}, name="cut", root=tmp_path)
    cut.write_json("params.json", {**cut.params, "gan_epochs": 2})  # killed after its first adversarial epoch
    cut.set_status("interrupted")
    res = sweep.resume(cut.id, root=tmp_path)
    assert res["status"] == "done", res["error"]
    assert [(h.get("phase", ""), h["epoch"]) for h in cut.history] == [("", 0), ("gan", 0), ("gan", 1)]
    assert "resuming the adversarial phase at epoch 1" in (cut.dir / "notebook.ipynb").read_text()
    assert cut.metrics["valid_psnr_y"] == pytest.approx(whole.metrics["valid_psnr_y"], abs=1e-9)
    for hw, hc in zip(whole.history, cut.history):
        assert hc["psnr_y"] == pytest.approx(hw["psnr_y"], abs=1e-9), hc


@pytest.mark.slow
def test_init_from_a_run_fine_tunes_another_scale(tmp_path):
    src = execute.run_notebook("train", {**TINY, "epochs": "1"}, name="x2", root=tmp_path)
    ft = execute.run_notebook("train", {**TINY, "epochs": "1", "scale": "3", "init_from": str(src.id)}, name="x3",
                            root=tmp_path)
    assert ft.status == "done", ft.read("status.json").get("error")
    got = ft.read("init_from.json")
    assert got["checkpoint"].endswith("best.pth")
    assert got["loaded"]
    assert got["skipped"]
