"""The training lifecycle helpers: which weights a fine-tuned run starts from, and the record it keeps of them."""

from __future__ import annotations

import time

import pytest
import torch
from fastai.callback.core import Callback
from fit_helpers import CutAfter

from lab import data, learner, ledger, models, recording, runs, training


def _tiny(seed: int):
    torch.manual_seed(seed)
    return models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)


def test_init_from_a_gan_run_takes_the_phase_asked_for_and_the_ledger_says_which(tmp_path):
    src = runs.create({}, root=tmp_path, name="gan")
    pre, adv = _tiny(1), _tiny(2)
    src.save_checkpoint(models.checkpoint_payload(pre), "best")
    src.save_checkpoint(models.checkpoint_payload(adv), "last", "gan")
    src.save_checkpoint(models.checkpoint_payload(adv), "final")
    for source, expected, phase in ((str(src.id), adv, None), (f"{src.id}:gan", adv, "gan"),
                                    (f"{src.id}:pretrain", pre, "pretrain")):
        ft = runs.create({"init_from": source}, root=tmp_path, name="ft")
        net = _tiny(3)
        got = training.init_weights(ft, net, source)
        assert got["phase"] == phase
        assert len(got["loaded"]) == len(net.state_dict())
        for k, v in net.state_dict().items():
            assert torch.equal(v, expected.state_dict()[k]), f"{source}: {k} not from the expected checkpoint"
    df = ledger.load(tmp_path)
    assert list(df["init_weights"].dropna()) == [f"{src.name}/final.pth", f"{src.name}/final.pth",
                                                 f"{src.name}/best.pth"]
    with pytest.raises(FileNotFoundError, match="no run with id 99"):
        training.init_weights(ft, _tiny(4), "99:gan")


def test_a_parameter_changed_after_its_cell_ran_is_refused():
    class Built:
        built_from = {"patch_size": 24, "data": "builtin"}

    training.check_built({"patch_size": 24, "data": "builtin", "lr": 1e-3}, Built())
    with pytest.raises(ValueError, match=r"patch_size 24 -> 48.*run the cells"):
        training.check_built({"patch_size": 48, "data": "builtin"}, Built())
    net = training.build_model("edsr_baseline", {"num_block": 1, "num_feat": 8}, 2)
    assert net.built_from == {"model": "edsr_baseline", "model_kwargs": {"num_block": 1, "num_feat": 8}, "scale": 2,
                              "linear_light": False}


SLEEP_S = 0.05


class Slow(Callback):
    """Each training batch takes at least SLEEP_S, so an epoch's share of the clock is known from below."""

    def after_batch(self):
        if self.training:
            time.sleep(SLEEP_S)


def _learn(run):
    torch.manual_seed(0)
    dls = data.dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=12,
                           valid="builtin:chelsea", valid_max_size=32, seed=5)
    net = models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)
    lrn = learner.restoration_learner(dls, net, loss="l1", lr=2e-3, cbs=[*recording.record_run(run), Slow()],
                                      path=run.dir)
    lrn.remove_cb(lrn.progress)
    return lrn


def test_a_resumed_run_counts_the_time_of_every_attempt(tmp_path):
    run = runs.create({}, root=tmp_path, name="cut")
    first = _learn(run)
    first.add_cb(CutAfter(0))  # stopped after its first epoch
    with first.no_logging():
        training.fit(first, 3, 2e-3, "constant", run=run)
    assert [h["epoch"] for h in run.history] == [0]
    again = _learn(run)  # `lab resume`: a fresh process from last.pth
    floor = len(again.dls.train) * SLEEP_S  # an epoch's training takes at least this
    t0 = time.perf_counter()
    with again.no_logging():
        out = training.fit(again, 3, 2e-3, "constant", run=run, resume=run.checkpoint("last"))
    attempt_s = time.perf_counter() - t0
    elapsed = [h["elapsed_s"] for h in run.history]
    trained = [h["train_s"] for h in run.history]
    assert [h["epoch"] for h in run.history] == [0, 1, 2]
    assert elapsed[1] >= elapsed[0] + floor, f"the history's clock goes on across the resume: {elapsed}"
    assert trained[1] >= trained[0] + floor, f"train_s adds up across the resume: {trained}"
    assert out.minutes * 60 > attempt_s, "the run's training minutes include the attempt before the resume"
