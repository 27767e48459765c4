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


def _tf_cosine_decay_restarts(lr, step, first_decay_steps, t_mul, m_mul, alpha):
    """TensorFlow's cosine_decay_restarts, transcribed from its documented closed form."""
    frac = step / first_decay_steps
    if t_mul == 1.0:
        i = math.floor(frac)
        frac -= i
    else:
        i = math.floor(math.log(1.0 - frac * (1.0 - t_mul)) / math.log(t_mul))
        frac = (frac - (1.0 - t_mul**i) / (1.0 - t_mul)) / t_mul**i
    return lr * ((1 - alpha) * 0.5 * m_mul**i * (1.0 + math.cos(math.pi * frac)) + alpha)


def test_cosine_restarts_follow_tensorflow_cosine_decay_restarts():
    n = 70  # 3 cycles with t_mul 2: 10, 20, 40 steps
    f = make_schedule("cosine_restarts", 1.0, n, first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.1)
    assert _at(f, 0, n) == pytest.approx(1.0)
    assert _at(f, 5, n) == pytest.approx(0.1 + 0.9 * 0.5)  # half way down the first half cosine
    assert _at(f, 9.999, n) == pytest.approx(0.1, abs=1e-4)  # the floor is alpha * lr_max
    assert _at(f, 10, n) == pytest.approx(0.1 + 0.9 * 0.5)  # restart 1: (1 - alpha) m_mul + alpha, not m_mul
    assert _at(f, 30, n) == pytest.approx(0.1 + 0.9 * 0.25)  # restart 2: (1 - alpha) m_mul^2 + alpha
    assert _at(f, 50, n) == pytest.approx(0.1 + 0.9 * 0.25 * 0.5)  # middle of the 40-step third cycle
    for step in (0, 3, 10, 17, 29, 30, 44, 69):
        assert _at(f, step, n) == pytest.approx(_tf_cosine_decay_restarts(1.0, step, 10, 2.0, 0.5, 0.1)), step
    assert min(_at(f, i, n) for i in range(n)) >= 0.1 - 1e-12
    even = schedules.cos_restarts(2.0, period=0.25, t_mul=1.0)
    assert [even(p) for p in (0.0, 0.25, 0.5, 0.75)] == pytest.approx([2.0] * 4)
    assert even(0.125) == pytest.approx(1.0)
    tiled = make_schedule("cosine_restarts", 1.0, n, cycles=3, t_mul=2.0)  # the same cycles from `cycles`
    assert _at(tiled, 30, n) == pytest.approx(_tf_cosine_decay_restarts(1.0, 30, 10, 2.0, 1.0, 0.0))


def test_log_000_constants_give_tensorflows_values():
    # 000 ##21: cosine restarts t_mul=2.0, m_mul=0.9, alpha=0.1 times 0.997^(step/1000), 127000 steps; the first
    # cycle of 1000 steps is read from the step counts (127000 = 1000 (2^7 - 1)), the log does not state it.
    n, lr = 127000, 1e-3
    f = schedules.product(make_schedule("cosine_restarts", lr, n, first_decay_steps=1000, t_mul=2.0, m_mul=0.9,
                                        alpha=0.1),
                          make_schedule("exp_decay", 1.0, n, rate=0.997, decay_steps=1000))
    for step in (0, 500, 1000, 2500, 3000, 62999, 63000, 100000, 126999):
        want = _tf_cosine_decay_restarts(lr, step, 1000, 2.0, 0.9, 0.1) * 0.997 ** (step / 1000)
        assert _at(f, step, n) == pytest.approx(want, rel=1e-6), step
    assert _at(f, 63000, n) == pytest.approx(lr * (0.9 * 0.9**6 + 0.1) * 0.997**63, rel=1e-6)


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


def test_warmup_restarts_decay_counts_the_decay_from_step_0():
    n, warm = 110, 10
    f = make_schedule("warmup_restarts_decay", 1.0, n, warmup_steps=warm, first_decay_steps=10, t_mul=1.0,
                      m_mul=0.8, alpha=0.0, decay_rate=0.5, decay_steps=100)

    def main(step):  # TF's cosine_decay_restarts x exponential_decay, both of the global step
        return _tf_cosine_decay_restarts(1.0, step, 10, 1.0, 0.8, 0.0) * 0.5 ** (step / 100)

    assert _at(f, 0, n) == pytest.approx(0.0)
    assert _at(f, 5, n) == pytest.approx(main(10) * 0.5)  # linear up to the schedule's value at the warmup end
    for step in (10, 15, 20, 35, 60, 109):
        assert _at(f, step, n) == pytest.approx(main(step), rel=1e-6), step
    assert _at(f, 10, n) == pytest.approx(0.8 * 0.5**0.1)  # restart 1 at step 10, decayed for 10 steps
    # fastai's ParamScheduler accumulates pos in floating point; restarts must still land on their step
    pos, seen = 0.0, []
    for _ in range(n):
        seen.append(f(pos))
        pos += 1.0 / n
    assert seen[30] == pytest.approx(main(30), rel=1e-6)


def test_warmup_over_restart_cycles_as_log_000_uses_it():
    # 000 ##100 "cosine restarts (warmup_cycle=6)" with "exp decay: 0.998", 255000 steps; 000 ##72 "warm up for LR
    # schedule (63000 steps)": six cycles of 1000 steps doubling (1000 (2^6 - 1) = 63000) under the warmup
    n, lr = 255000, 1e-3
    f = make_schedule("warmup_restarts_decay", lr, n, warmup_cycles=6, first_decay_steps=1000, t_mul=2.0,
                      m_mul=0.9, alpha=0.1, decay_rate=0.998, decay_steps=1000)
    at_end = lr * (0.9 * 0.9**6 + 0.1) * 0.998**63  # restart 6 at step 63000, decayed from step 0
    assert _at(f, 63000, n) == pytest.approx(at_end, rel=1e-6)
    assert _at(f, 31500, n) == pytest.approx(at_end / 2, rel=1e-6)
    assert _at(f, 127000, n) == pytest.approx(lr * (0.9 * 0.9**7 + 0.1) * 0.998**127, rel=1e-6)
    assert _at(f, 95000, n) == pytest.approx(lr * (0.9 * 0.5 * 0.9**6 + 0.1) * 0.998**95, rel=1e-6)


def test_product_multiplies_pointwise():
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
