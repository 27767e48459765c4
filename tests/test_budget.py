"""Runs measured in steps: a budget stops at exactly its steps, validates and saves on schedule, schedules move by
step, and a run resumed from its last saved step (DataLoader workers on) reaches the uninterrupted run's weights."""

from __future__ import annotations

import pytest
import torch
from fastai.callback.core import Callback
from fit_helpers import CutAfter

from lab import data, learner, models, runs
from lab.data import Budget, make_budget
from lab.recording import load_resume_state, record_run


def test_budget_cuts_steps_into_epochs():
    b = make_budget(items_per_epoch=0, batch_size=4, steps=10, valid_every=4, save_every=8)
    assert (b.epochs, [b.steps_in(e) for e in range(3)], b.save_every_epochs) == (3, [4, 4, 2], 2)
    assert [b.steps_before(e) for e in range(5)] == [0, 4, 8, 10, 14], "epochs past the budget are whole"
    assert make_budget(80, 16, epochs=3) == Budget(15, 5, 5)
    assert make_budget(0, 4, steps=50).steps_per_epoch == 5, "ten validations by default"
    with pytest.raises(ValueError, match="multiple of valid_every"):
        make_budget(0, 4, steps=10, valid_every=4, save_every=6)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        make_budget(0, 4, steps=-3)


class StepCounter(Callback):
    order = 100

    def before_fit(self):
        self.steps, self.lrs = 0, []

    def after_step(self):
        self.steps += 1
        self.lrs.append(self.opt.hypers[-1]["lr"])


def _dls(workers=0):
    return data.dataloaders("builtin:astronaut,coffee", scale=2, patch_size=12, batch_size=4, valid="builtin:chelsea",
                            valid_max_size=48, seed=2, steps=10, valid_every=4, save_every=8, num_workers=workers)


def _learn(run, dls):
    torch.manual_seed(0)
    net = models.create("edsr_baseline", scale=2, num_block=1, num_feat=8)
    rec = record_run(run, save_every=dls.budget.save_every_epochs)
    learn = learner.restoration_learner(dls, net, loss="l1", lr=2e-3, cbs=[*rec, StepCounter()], path=run.dir)
    learn.remove_cb(learn.progress)
    return learn


@pytest.mark.slow
def test_steps_budget_stops_exactly_saves_on_schedule_and_resumes_with_workers(tmp_path):
    whole, cut = (runs.create({}, root=tmp_path, name=n) for n in ("whole", "cut"))
    dls = _dls(workers=2)
    a = _learn(whole, dls)
    with a.no_logging():
        learner.fit_schedule(a, dls.budget, 2e-3, "warmup_cosine")
    assert a.step_counter.steps == 10, "the budget's steps exactly"
    assert [(h["epoch"], h["step"]) for h in whole.history] == [(0, 4), (1, 8), (2, 10)], "validated every 4 steps"
    assert torch.load(whole.checkpoint("last"), weights_only=True)["step"] == 10
    lrs = a.step_counter.lrs
    assert lrs[0] < lrs[3], "warmup, then cosine over the 10 steps"
    assert lrs[-1] < lrs[5], "warmup, then cosine over the 10 steps"

    b = _learn(cut, _dls(workers=2))  # killed after epoch 2 of 3: its last save was at step 8 (epoch 1)
    with b.no_logging():
        b.fit(3, 2e-3, cbs=[CutAfter(1), *learner.schedule_callbacks(dls.budget, 2e-3, "warmup_cosine")])
    assert torch.load(cut.checkpoint("last"), weights_only=True)["step"] == 8
    c = _learn(cut, _dls(workers=2))
    start = load_resume_state(c, cut.checkpoint("last"))
    assert start == 2
    with c.no_logging():
        learner.fit_schedule(c, dls.budget, 2e-3, "warmup_cosine", start_epoch=start)
    assert c.step_counter.steps == 2
    assert c.step_counter.lrs == pytest.approx(lrs[8:], rel=1e-12)
    for (k, va), vc in zip(a.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(va, vc), f"{k} differs after resuming"


@pytest.mark.slow
def test_same_params_and_seed_give_identical_results_with_workers(tmp_path):
    results = []
    for name in ("a", "b"):
        run = runs.create({}, root=tmp_path, name=name)
        dls = _dls(workers=2)
        learn = _learn(run, dls)
        with learn.no_logging():
            learner.fit_schedule(learn, dls.budget, 2e-3, "cosine")
        results.append((learn.model.state_dict(), [h["psnr_y"] for h in run.history]))
    (wa, ha), (wb, hb) = results
    assert ha == hb, "the same validation scores, bit for bit"
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
