"""A time budget ends training on time (within one step) with the LR schedule completed, records the steps it took,
plans its epochs from the clock (a first guess of the step time that is far too slow or too fast does not shorten
the run) and a resumed time-budgeted run continues the clock and the plan."""

from __future__ import annotations

import math
import time

import pytest
import torch
from fastai.callback.core import Callback

from lab import data, learner, models, runs, schedules, training
from lab.callbacks import TimeBudget, plan_epoch
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

    def before_train(self):
        self.t_train = time.perf_counter()

    def after_train(self):
        self.train_s = getattr(self, "train_s", 0.0) + time.perf_counter() - self.t_train
        self.t_after_train = time.perf_counter()

    def after_epoch(self):  # a validation as the budget sees it: validating, recording, checkpointing
        self.valid_s = [*getattr(self, "valid_s", []), time.perf_counter() - self.t_after_train]


class Pace(Callback):
    """Sleeps `delay` seconds before each of the batches `first`..`last` (0-based): a learner slowed at its start,
    or one slowed after a fast start."""

    order = 0

    def __init__(self, delay: float, first: int = 0, last: int = 10**9, valid_delay: float = 0.0):
        self.delay, self.first, self.last, self.n, self.valid_delay = delay, first, last, 0, valid_delay

    def before_batch(self):
        if self.training:
            if self.first <= self.n <= self.last:
                time.sleep(self.delay)
            self.n += 1
        elif self.n <= self.last and self.valid_delay:  # the validations while the steps are slow are slow too
            time.sleep(self.valid_delay)


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
    minutes = 0.15  # 9 s: dozens of steps of this tiny network on a quiet machine
    t0 = time.perf_counter()
    with learn.no_logging():
        out = training.fit(learn, learn.dls.budget, 2e-3, "cosine", run=run, time_budget=minutes)
    took = time.perf_counter() - t0
    # one step as the budget sees it: from one step's end to the next (the batch's loading and callbacks included)
    slowest = max(clock.step_s + [b - a for a, b in zip(clock.ends, clock.ends[1:])])
    assert len(clock.lrs) >= 2, "steps enough to see the schedule move (a loaded machine takes few)"
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


def _timed_fit(tmp_path, monkeypatch, first_steps, pace, minutes=0.1):
    """A time-budgeted fit whose first epoch's loader holds `first_steps` and whose steps are paced by `pace`."""
    plan = training.time_budget_plan
    monkeypatch.setattr(training, "time_budget_plan", lambda b, n: plan(b, n, first_steps))
    run = runs.create({}, root=tmp_path, name="paced")
    learn, clock = _learn(run)
    learn.add_cb(pace)
    t0 = time.perf_counter()
    with learn.no_logging():
        training.fit(learn, learn.dls.budget, 2e-3, "cosine", run=run, time_budget=minutes)
    return run, clock, time.perf_counter() - t0, clock.t_fit - t0


@pytest.mark.parametrize("case", ["slow start", "fast start", "slow first epoch"])
def test_time_budget_follows_the_clock_when_the_first_steps_mislead(tmp_path, monkeypatch, case):
    """The first steps are slow (0.25 s each, the rest unpaced) or fast (the rest slowed by 0.04 s), and the first
    epoch's loader holds far too few (3) or far too many steps (2000); or the whole first epoch is slow (0.8 s a
    step, its validation 0.5 s: a neighbour's burst), so the next epoch, the last once such validations are
    measured, is sized from a rate ten times too slow and its loader runs out long before the clock. The run still trains until its minutes are spent, overruns by at
    most one step plus one validation, and records the steps the budget became."""
    minutes = 0.2
    pace, guess = {"slow start": (Pace(0.25, last=4), 3), "fast start": (Pace(0.04, first=5), 2000),
                   "slow first epoch": (Pace(0.8, last=2, valid_delay=0.5), 3)}[case]
    run, clock, took, setup = _timed_fit(tmp_path, monkeypatch, guess, pace, minutes)
    budget_s = minutes * 60
    slowest = max(b - a for a, b in zip(clock.ends, clock.ends[1:]))
    last_end = setup + clock.ends[-1]
    assert last_end >= 0.97 * budget_s, f"stopped early: last step at {last_end:.2f} s of {budget_s} s"
    # the validations before the end take at most 2 % of the time (fewer of them otherwise): >= 97 % trains,
    # to within the step the clock ends on
    assert clock.train_s + setup >= 0.97 * budget_s - slowest, (clock.train_s, clock.valid_s)
    assert took <= budget_s + slowest + clock.valid_s[-1] + 0.5, (took, slowest, clock.valid_s[-1])
    rec = run.read("data")
    assert rec["time_budget_steps"] == len(clock.lrs), "the steps the budget became are recorded"
    assert rec["budget"]["steps"] == len(clock.lrs)
    assert sum(rec["budget"]["steps_by_epoch"]) == len(clock.lrs), rec["budget"]
    assert [h["step"] for h in run.history][-1] == len(clock.lrs)
    cos = schedules.make_schedule("cosine", 2e-3, 100)
    assert clock.lrs[-1] <= cos(1 - 2 * slowest / budget_s) + 1e-9, "the schedule reached its end with the time"


def test_time_budget_plans_even_shares_and_few_costly_validations():
    # 100 s and 10 epochs left, validations of 0.1 s: 9 of them fit in 2 % of the time; even shares of the rest
    left, share, steps = plan_epoch(100, 10, [0.1], 0.05, margin=3)
    assert left == 10
    assert share == pytest.approx((100 - 9 * 0.1) / 10)
    assert steps == math.ceil(3 * share / 0.05)
    # validations of 1 s: only 2 fit in 2 % of 100 s, so 3 epochs are left (the last validation follows the budget)
    left, share, _ = plan_epoch(100, 10, [1.0, 1.0, 1.0], 0.05)
    assert left == 3
    assert share == pytest.approx(98 / 3)
    assert plan_epoch(10, 4, [], 0.0) == (4, 2.5, 0), "no measurement yet: even shares, the loader as planned"


def test_budget_replan_keeps_the_epochs_taken():
    b = data.Budget(40, 4, 4)
    r = b.replan(3, 10)
    assert r.epochs == 10
    assert [r.steps_in(e) for e in range(10)] == [4, 4, 4] + [10] * 7
    assert r.steps_before(4) == 22
    c = r.cut(5, 2)
    assert c.steps == 4 * 3 + 10 + 10 + 2
    assert c.epochs == 6
    assert data.Budget(**c.state()) == c
    assert c.to_dict()["steps_by_epoch"] == [4, 4, 4, 10, 10, 2]
    with pytest.raises(ValueError, match="taken"):
        data.Budget(5, 1, 1, (3, 3))


def test_time_budget_ends_a_run_early_when_steps_run_out(tmp_path):
    """Without replanning (a fixed budget beside a clock) the steps may bind first; the schedule still ends at 1."""
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


def test_time_budget_resume_state_carries_the_clock_and_plan():
    tb = TimeBudget(60, replan=True)
    tb.restore_resume_state({"spent": 12.5, "step_s": 0.2, "valid_s": [1.0],
                             "budget": {"steps": 40, "steps_per_epoch": 4, "save_every": 4, "taken": [2, 6]}})
    assert tb.step_s == 0.2
    tb.before_fit()
    assert 12.5 <= tb.elapsed < 13.5
    assert data.Budget(**tb.budget_state).steps_before(3) == 12
    assert 12.5 / 60 <= tb.pos() < 0.3
    with pytest.raises(ValueError, match="seconds > 0"):
        TimeBudget(0)


class Contention(Callback):
    """Sleeps `delay` seconds before each training batch run at `threads` torch threads: a neighbour that stalls a
    pool of that size."""

    order = 0

    def __init__(self, threads: int, delay: float):
        self.threads, self.delay = threads, delay

    def before_batch(self):
        if self.training and torch.get_num_threads() == self.threads:
            time.sleep(self.delay)


class StepTime(Callback):
    """A clock that each training batch advances by `base` seconds, and by `delay` more at `threads` torch threads:
    a neighbour stalling a pool of that size, timed exactly whatever the machine's load."""

    order = 0

    def __init__(self, threads: int, delay: float, base: float = 0.01):
        self.threads, self.delay, self.base, self.t = threads, delay, base, 0.0

    def now(self) -> float:
        return self.t

    def before_batch(self):
        if self.training:
            self.t += self.base + (self.delay if torch.get_num_threads() == self.threads else 0.0)


@pytest.mark.parametrize("slow", [2, 1])
def test_thread_tuner_keeps_the_count_that_steps_fastest(tmp_path, slow):
    from lab.callbacks import ThreadTuner

    start = torch.get_num_threads()
    run = runs.create({}, root=tmp_path, name="tuned")
    learn, clock = _learn(run, steps=12)
    step_time = StepTime(slow, 0.3)
    tuner = ThreadTuner(counts=(2, 1), every_s=1000, clock=step_time.now)
    learn.add_cbs([step_time, tuner])
    try:
        with learn.no_logging():
            training.fit(learn, learn.dls.budget, 2e-3, "cosine", run=run)
    finally:
        tuner.restore()
    assert [n for _, n in tuner.picks] == [3 - slow], tuner.times
    assert tuner.picks[0][0] == 6, "two counts probed for 3 steps each, then the pick"
    assert torch.get_num_threads() == start, "the fit's thread count is restored"


def test_a_time_budgeted_fit_on_cpu_records_its_thread_picks(tmp_path, monkeypatch):
    start = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run, clock, _, _ = _timed_fit(tmp_path, monkeypatch, 2000, Contention(2, 0.2), minutes=0.1)
        assert torch.get_num_threads() == 2, "restored after the fit"
    finally:
        torch.set_num_threads(start)
    picks = run.read("data")["threads_picked"]
    assert [n for _, n in picks][:1] == [1], picks
