"""A time budget ends training on time (within one step) with the LR schedule completed, records the steps it took,
and a resumed time-budgeted run continues the clock and the measured step ceiling."""

from __future__ import annotations

import time

import pytest
import torch
from fastai.callback.core import Callback

from lab import data, learner, models, runs, schedules, training
from lab.callbacks import TimeBudget
from lab.recording import record_run


class StepClock(Callback):
    """Times every optimizer step and keeps the LR it ran with."""

    order = 100

    def before_fit(self):
        self.t_fit, self.lrs, self.step_s, self.ends = time.perf_counter(), [], [], []

    def before_batch(self):
        self.t = time.perf_counter()

    def after_step(self):
        self.lrs.append(self.opt.hypers[-1]["lr"])
        self.step_s.append(time.perf_counter() - self.t)
        self.ends.append(time.perf_counter() - self.t_fit)


def _learn(run, steps=0):
    dls = data.dataloaders("builtin:astronaut,coffee", scale=2, patch_size=16, batch_size=4, valid="builtin:chelsea",
                           valid_max_size=48, seed=1, steps=steps, epochs=1, repeat=4)
    torch.manual_seed(0)
    net = models.create("edsr_baseline", scale=2, num_block=2, num_feat=16)
    clock = StepClock()
    learn = learner.restoration_learner(dls, net, loss="l1", lr=2e-3, amp="none", path=run.dir,
                                        cbs=[*record_run(run, save_every=1), clock])
    learn.remove_cb(learn.progress)
    return learn, clock


def test_time_budget_ends_within_one_step_with_the_schedule_finished(tmp_path):
    run = runs.create({}, root=tmp_path, name="timed")
    learn, clock = _learn(run)
    minutes = 0.1  # 6 s: dozens of steps of this tiny network
    t0 = time.perf_counter()
    with learn.no_logging():
        out = training.fit(learn, learn.dls.budget, 2e-3, "cosine", run=run, time_budget=minutes)
    took = time.perf_counter() - t0
    # one step as the budget sees it: from one step's end to the next (the batch's loading and callbacks included)
    slowest = max(clock.step_s + [b - a for a, b in zip(clock.ends, clock.ends[1:])])
    assert len(clock.lrs) > 5, "a few steps at least"
    # the last optimizer step ends within one step of the budget (the final validation comes after it)
    assert minutes * 60 - slowest <= clock.ends[-1] + (clock.t_fit - t0) <= minutes * 60 + slowest, \
        (clock.ends[-1], slowest)
    assert took < minutes * 60 + 10, "the validation after the cut is all that follows the budget"
    cos = schedules.make_schedule("cosine", 2e-3, 100)
    pos_last = 1 - 2 * slowest / (minutes * 60)
    assert clock.lrs[-1] <= cos(pos_last) + 1e-9, "the schedule reached its end with the time"
    assert clock.lrs[0] > clock.lrs[-1], "the LR decayed (how far: the line above, from the slowest step)"
    rec = run.read("data")
    assert rec["time_budget_minutes"] == minutes, "the steps taken are recorded, not the ceiling"
    assert rec["budget"]["steps"] == len(clock.lrs), "the steps taken are recorded, not the ceiling"
    hist = run.history
    assert hist[-1]["step"] == len(clock.lrs)
    assert out.minutes * 60 < minutes * 60 + 10
    # the cut epoch's row has every column in its place (fastai drops a cancelled epoch's train loss)
    assert set(hist[-1]) == set(hist[0]) if len(hist) > 1 else "train_loss" in hist[-1]
    assert hist[-1]["psnr_y"] > 10, hist[-1]
    assert 0 < hist[-1]["ssim_y"] < 1, hist[-1]
    assert 0 < hist[-1]["train_loss"] < 1, hist[-1]
    assert isinstance(hist[-1]["time"], str), hist[-1]
    assert runs.Run(run.dir).checkpoint("last").is_file(), "the cut epoch is checkpointed as the last"


def test_time_budget_ceiling_ends_a_run_early_when_steps_run_out(tmp_path):
    """When the measured ceiling binds first (a faster machine than measured) the schedule still ends at 1."""
    run = runs.create({}, root=tmp_path, name="ceiling")
    learn, clock = _learn(run, steps=6)
    training.use_budget(learn, data.Budget(6, 3, 3))
    tb = TimeBudget(3600)
    learn.add_cb(tb)
    with learn.no_logging():
        learner.fit_schedule(learn, learn.dls.budget, 2e-3, "cosine", clock=tb)
    assert len(clock.lrs) == 6
    assert not tb.cut
    assert clock.lrs[-1] == pytest.approx(schedules.make_schedule("cosine", 2e-3, 6)(5 / 6))


def test_time_budget_resume_state_carries_the_clock_and_ceiling():
    tb = TimeBudget(60)
    tb.restore_resume_state({"spent": 12.5, "budget": {"steps": 40, "steps_per_epoch": 4, "save_every": 4}})
    tb.before_fit()
    assert 12.5 <= tb.elapsed < 13.5
    assert tb.budget_state["steps"] == 40
    assert 12.5 / 60 <= tb.pos() < 0.3
    with pytest.raises(ValueError, match="seconds > 0"):
        TimeBudget(0)
