"""LR schedules: values at the points that define them, name lookup, fastai ParamScheduler integration, plotting."""

from __future__ import annotations

import math
import pickle

import matplotlib
import pytest
import torch
from fastai.callback.progress import ProgressCallback
from fastai.callback.schedule import ParamScheduler
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from torch import nn

from lab import schedules
from lab.schedules import SCHEDULES, make_schedule, plot_schedule

matplotlib.use("Agg")


def _at(sched, step, total):
    return sched(step / total)


def test_cosine_restarts_jump_back_to_decayed_peaks_and_floor_at_alpha():
    n = 70  # 3 cycles with t_mul 2: 10, 20, 40 steps
    f = make_schedule("cosine_restarts", 1.0, n, cycles=3, t_mul=2.0, m_mul=0.5, alpha=0.1)
    assert _at(f, 0, n) == pytest.approx(1.0)
    assert _at(f, 5, n) == pytest.approx(0.1 + 0.9 * 0.5)  # half way down the first half cosine
    assert _at(f, 9.999, n) == pytest.approx(0.1, abs=1e-4)  # the floor is alpha * lr_max
    assert _at(f, 10, n) == pytest.approx(0.5)  # restart 1: m_mul * lr_max
    assert _at(f, 30, n) == pytest.approx(0.25)  # restart 2: m_mul^2 * lr_max
    assert _at(f, 50, n) == pytest.approx(0.1 + 0.15 * 0.5)  # middle of the 40-step third cycle
    assert min(_at(f, i, n) for i in range(n)) >= 0.1 - 1e-12
    even = schedules.cos_restarts(2.0, period=0.25, t_mul=1.0)
    assert [even(p) for p in (0.0, 0.25, 0.5, 0.75)] == pytest.approx([2.0] * 4)
    assert even(0.125) == pytest.approx(1.0)


def test_warmup_cosine_reaches_lr_max_at_warmup_end_then_decays():
    n = 100
    f = make_schedule("warmup_cosine", 3e-3, n, warmup_steps=10, alpha=0.01)
    assert _at(f, 0, n) == pytest.approx(0.0)
    assert _at(f, 5, n) == pytest.approx(1.5e-3)
    assert _at(f, 10, n) == pytest.approx(3e-3)  # warmup end = lr_max
    after = [_at(f, i, n) for i in range(10, n + 1)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert after[-1] == pytest.approx(3e-5)


def test_exp_decay_multiplies_by_rate_every_k_steps():
    n = 100
    f = make_schedule("exp_decay", 2.0, n, rate=0.5, decay_steps=10)
    assert _at(f, 10, n) == pytest.approx(1.0)
    assert _at(f, 20, n) == pytest.approx(0.5)
    assert _at(f, 15, n) == pytest.approx(2.0 * 0.5**1.5)
    stairs = make_schedule("exp_decay", 2.0, n, rate=0.5, decay_steps=10, staircase=True)
    assert _at(stairs, 15, n) == pytest.approx(1.0)
    assert _at(stairs, 19, n) == pytest.approx(1.0)
    default = make_schedule("exp_decay", 1.0, n, rate=0.1)
    assert _at(default, n, n) == pytest.approx(0.1)  # by default the rate is reached at the last step


def test_step_halving_lands_on_exact_steps_with_fastai_style_positions():
    n = 100
    f = make_schedule("step", 1.0, n, every=25)
    pos, values = 0.0, []
    for _ in range(n):  # fastai accumulates pct_train += 1/n, so pos carries rounding error
        values.append(f(pos))
        pos += 1.0 / n
    assert values == [1.0] * 25 + [0.5] * 25 + [0.25] * 25 + [0.125] * 25


def test_warmup_restarts_decay_composes_phases_and_factors():
    n, warm = 110, 10
    f = make_schedule("warmup_restarts_decay", 1.0, n, warmup_steps=warm, cycles=2, t_mul=1.0, m_mul=0.8,
                      decay_rate=0.5, decay_steps=100)
    assert _at(f, 0, n) == pytest.approx(0.0)
    assert _at(f, warm, n) == pytest.approx(1.0)
    # After the warmup, 100 steps hold two 50-step cycles; the second restarts at 0.8 x the decay factor there.
    assert _at(f, warm + 50, n) == pytest.approx(0.8 * 0.5 ** (50 / 100), rel=1e-5)
    assert _at(f, warm + 25, n) == pytest.approx(0.5 * 0.5 ** (25 / 100), rel=1e-5)
    # fastai's combine_scheds hands each phase a float32 position; restarts must still land on their step.
    f4 = make_schedule("warmup_restarts_decay", 1.0, n, warmup_steps=warm, cycles=4, t_mul=1.0, m_mul=0.8,
                       decay_rate=0.5, decay_steps=100)
    for k in range(1, 4):
        assert _at(f4, warm + 25 * k, n) == pytest.approx(0.8**k * 0.5 ** (25 * k / 100), rel=1e-5), k
    prod = schedules.product(schedules.cos_restarts(1.0, 0.5, 1.0, 0.8), schedules.exp_decay(1.0, 0.5, 100, 100))
    assert prod(0.3) == pytest.approx(schedules.cos_restarts(1.0, 0.5, 1.0, 0.8)(0.3) * 0.5 ** 0.3)


def test_one_cycle_and_constant_key_points():
    f = make_schedule("one_cycle", 1e-2, 100, pct_start=0.25)
    assert f(0.0) == pytest.approx(1e-2 / 25)
    assert f(0.25) == pytest.approx(1e-2)
    assert f(1.0) == pytest.approx(1e-7)
    assert make_schedule("constant", 5e-4, 10)(0.7) == pytest.approx(5e-4)


def test_make_schedule_errors_list_the_choices():
    with pytest.raises(KeyError, match="warmup_restarts_decay"):
        make_schedule("linear_warmup_cosine_whatever", 1e-3, 100)
    with pytest.raises(ValueError, match="t_mul"):
        make_schedule("cosine_restarts", 1e-3, 100, tmul=2)
    with pytest.raises(ValueError, match="lr_max"):
        make_schedule("cosine", 0.0, 100)
    with pytest.raises(ValueError, match="warmup"):
        make_schedule("warmup_cosine", 1e-3, 100, warmup_steps=100)
    with pytest.raises(ValueError, match="alpha"):
        schedules.cos_restarts(1.0, alpha=2.0)


def test_every_named_schedule_is_finite_positive_and_bounded():
    for name in SCHEDULES:
        f = make_schedule(name, 1e-3, 50)
        values = [f(i / 50) for i in range(50)]
        assert all(math.isfinite(v) and 0 <= v <= 1e-3 * (1 + 1e-9) for v in values), name


def test_bound_schedules_pickle_and_show_their_arguments():
    f = make_schedule("cosine_restarts", 1e-3, 70, m_mul=0.5)
    g = pickle.loads(pickle.dumps(f))
    assert g(0.3) == f(0.3)
    assert "m_mul=0.5" in repr(f)


def test_param_scheduler_drives_the_optimizer_lr():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 4, 4, generator=g)
    dls = DataLoaders.from_dsets(list(zip(x[:12], x[:12])), list(zip(x[12:], x[12:])), bs=4, device="cpu",
                                 num_workers=0)
    learn = Learner(dls, nn.Conv2d(3, 3, 1), loss_func=nn.L1Loss())
    if hasattr(learn, "progress"):
        learn.remove_cb(ProgressCallback)
    sched = make_schedule("step", 1e-2, 12, every=3)
    with learn.no_logging():
        learn.fit(4, cbs=ParamScheduler({"lr": sched}))  # 4 epochs x 3 batches
    assert learn.recorder.lrs == pytest.approx([1e-2] * 3 + [5e-3] * 3 + [2.5e-3] * 3 + [1.25e-3] * 3)


def test_plot_schedule_draws_one_point_per_step():
    f = make_schedule("warmup_cosine", 1e-3, 40)
    ax = plot_schedule(f, 40, log=False, label="warmup_cosine")
    x, y = ax.lines[0].get_data()
    assert list(x) == list(range(40))
    assert list(y) == pytest.approx([f(i / 40) for i in range(40)])
    assert ax.get_xlabel() == "step"
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
