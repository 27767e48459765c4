"""Learning-rate schedules as pure functions of the training position `pos` in [0, 1], in fastai's style.

`sched_*(start, ..., pos)` are the pure functions; the factories (`cos_restarts`, `exp_decay`, `step_decay`,
`product`, `warmup`) bind their arguments with `functools.partial` and return `f(pos) -> float` (picklable, with a
readable repr), ready for `ParamScheduler({'lr': f})`. Phases are joined with fastai's `combine_scheds`, factors
with `product`. `make_schedule(name, lr_max, total_steps, **kw)` picks a named recipe from a notebook.
Cosine restarts and exponential decay are TensorFlow's `cosine_decay_restarts` and `exponential_decay` (the
framework of the logs that use them, 000 ##20-##21), both counted from step 0.

fastai's ParamScheduler calls a schedule with pos = i / total_steps at training step i (accumulated in floating
point, and in float32 inside `combine_scheds` phases); so step-based schedules snap pos * total_steps to the nearest
integer when within 0.01 of it, and restarts trigger within 1e-6 of their position: steps land exactly.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, Sequence

from fastai.callback.schedule import SchedCos, SchedLin, SchedNo, combine_scheds, combined_cos

from lab.registry import Registry

Schedule = Callable[[float], float]


_POS_TOL = 1e-6  # positions this close to a restart count as the restart (fastai phases pass float32 positions)
_STEP_TOL = 1e-2  # step counts this close to an integer are snapped to it, for the same reason


def _at_step(pos: float, total_steps: int) -> float:
    s = pos * total_steps
    return float(round(s)) if abs(s - round(s)) < _STEP_TOL else s


def _restart_index(pos: float, period: float, t_mul: float) -> tuple[int, float]:
    """The cycle k holding `pos` and the fraction of it done (cycle k lasts period * t_mul^k)."""
    if t_mul == 1:
        k = math.floor(pos / period + 1e-9)
    else:
        k = max(0, math.floor(math.log(1 + pos * (t_mul - 1) / period, t_mul) + 1e-9))

    def begin(j: int) -> float:  # where cycle j starts
        return period * j if t_mul == 1 else period * (t_mul**j - 1) / (t_mul - 1)

    while k > 0 and begin(k) > pos + _POS_TOL:
        k -= 1
    while begin(k + 1) <= pos + _POS_TOL:
        k += 1
    return k, min(max((pos - begin(k)) / (period * t_mul**k), 0.0), 1.0)


def sched_cos_restarts(start: float, end: float, pos: float, period: float = 1.0, t_mul: float = 1.0,
                       m_mul: float = 1.0) -> float:
    """Cosine decay with warm restarts as TensorFlow's `cosine_decay_restarts` defines it (SGDR, Loshchilov &
    Hutter 2017, https://arxiv.org/abs/1608.03983).

    Cycle k (k = 0, 1, ...) lasts period * t_mul^k (in pos units); with alpha = end / start the value is
    start * ((1 - alpha) * m_mul^k * 0.5 * (1 + cos(pi * t)) + alpha), t the fraction of cycle k done. So every
    cycle ends on the floor `end`, and cycle k restarts at start * ((1 - alpha) * m_mul^k + alpha): m_mul shrinks
    the part above the floor, not the whole peak. A cycle cut short by pos = 1 does not reach the floor.
    """
    if not period > 0 or not t_mul > 0:
        raise ValueError(f"cosine restarts need period > 0 and t_mul > 0, got period={period}, t_mul={t_mul}")
    k, t = _restart_index(pos, period, t_mul)
    return end + (start - end) * m_mul**k * 0.5 * (1 + math.cos(math.pi * t))


def sched_exp_decay(start: float, pos: float, rate: float, decay_steps: float, total_steps: int,
                    staircase: bool = False) -> float:
    """TensorFlow's exponential_decay: start * rate^(step / decay_steps), step = pos * total_steps counted from 0
    (the exponent floored if `staircase`)."""
    e = _at_step(pos, total_steps) / decay_steps
    return start * rate ** (math.floor(e) if staircase else e)


def sched_step_decay(start: float, pos: float, every: int, gamma: float, total_steps: int) -> float:
    """Step decay: start * gamma^floor(step / every), step = pos * total_steps (gamma 0.5: halving)."""
    return start * gamma ** math.floor(_at_step(pos, total_steps) / every)


def sched_product(scheds: Sequence[Schedule], pos: float) -> float:
    """The product of several schedules at `pos` (e.g. restarts x a decay factor)."""
    out = 1.0
    for s in scheds:
        out *= s(pos)
    return out


def cos_restarts(lr_max: float, period: float = 1.0, t_mul: float = 2.0, m_mul: float = 1.0,
                 alpha: float = 0.0) -> Schedule:
    """TensorFlow's cosine_decay_restarts: first cycle `period` (fraction of the run), cycles x t_mul, the part above
    the floor x m_mul at each restart, floor alpha * lr_max."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (floor as a fraction of lr_max) must be in [0, 1], got {alpha}")
    return partial(sched_cos_restarts, lr_max, alpha * lr_max, period=period, t_mul=t_mul, m_mul=m_mul)


def exp_decay(start: float, rate: float, decay_steps: float, total_steps: int, staircase: bool = False) -> Schedule:
    """Exponential decay over `total_steps`: x rate every `decay_steps` steps (use start=1.0 for a factor)."""
    if not rate > 0 or not decay_steps > 0 or total_steps < 1:
        raise ValueError(f"exp_decay needs rate > 0, decay_steps > 0, total_steps >= 1; got {rate}, "
                         f"{decay_steps}, {total_steps}")
    return partial(sched_exp_decay, start, rate=rate, decay_steps=decay_steps, total_steps=total_steps,
                   staircase=staircase)


def step_decay(start: float, every: int, gamma: float, total_steps: int) -> Schedule:
    """Multiply by `gamma` every `every` steps over `total_steps`."""
    if every < 1 or not gamma > 0 or total_steps < 1:
        raise ValueError(f"step_decay needs every >= 1, gamma > 0, total_steps >= 1; got {every}, {gamma}, "
                         f"{total_steps}")
    return partial(sched_step_decay, start, every=every, gamma=gamma, total_steps=total_steps)


def product(*scheds: Schedule) -> Schedule:
    """Multiply schedules pointwise: product(cos_restarts(lr), exp_decay(1.0, ...)) decays the restart peaks."""
    return partial(sched_product, tuple(scheds))


def warmup(sched: Schedule, pct: float, start: float = 0.0) -> Schedule:
    """Linear warmup over the first `pct` of the run from `start` to sched(0), then `sched` over the rest."""
    if not 0 <= pct < 1:
        raise ValueError(f"warmup pct must be in [0, 1), got {pct}")
    if pct == 0:
        return sched
    return combine_scheds([pct, 1 - pct], [SchedLin(start, sched(0.0)), sched])


# ---------------------------------------------------------------- named recipes


def _warmup_pct(total_steps: int, warmup_pct: float, warmup_steps: int | None) -> float:
    return warmup_steps / total_steps if warmup_steps is not None else warmup_pct


def _cycles_period(cycles: int, t_mul: float) -> float:
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    return 1.0 / sum(t_mul**i for i in range(cycles))


def _one_cycle(lr_max: float, total_steps: int, div: float = 25.0, div_final: float = 1e5,
               pct_start: float = 0.25) -> Schedule:
    return combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final)


def _constant(lr_max: float, total_steps: int) -> Schedule:
    return SchedNo(lr_max, lr_max)


def _cosine(lr_max: float, total_steps: int, alpha: float = 0.0) -> Schedule:
    return SchedCos(lr_max, alpha * lr_max)


def _warmup_cosine(lr_max: float, total_steps: int, warmup_pct: float = 0.05, warmup_steps: int | None = None,
                   alpha: float = 0.0) -> Schedule:
    return warmup(SchedCos(lr_max, alpha * lr_max), _warmup_pct(total_steps, warmup_pct, warmup_steps))


def _cosine_restarts(lr_max: float, total_steps: int, cycles: int = 3, period: float | None = None,
                     first_decay_steps: int | None = None, t_mul: float = 2.0, m_mul: float = 1.0,
                     alpha: float = 0.0) -> Schedule:
    return cos_restarts(lr_max, _period(total_steps, cycles, period, first_decay_steps, t_mul), t_mul, m_mul, alpha)


def _period(total_steps: int, cycles: int, period: float | None, first_decay_steps: int | None,
            t_mul: float) -> float:
    """The first cycle's length in pos units: `first_decay_steps` (TensorFlow's name), `period`, or `cycles` tiling."""
    if first_decay_steps is not None:
        if first_decay_steps < 1:
            raise ValueError(f"first_decay_steps must be >= 1, got {first_decay_steps}")
        return first_decay_steps / total_steps
    return period or _cycles_period(cycles, t_mul)


def sched_warmup_restarts_decay(lr_max: float, pos: float, total_steps: int, warmup_steps: float, period: float,
                                t_mul: float, m_mul: float, alpha: float, decay_rate: float,
                                decay_steps: float) -> float:
    """Cosine restarts x exponential decay, both counted from step 0 as TensorFlow's schedules count global_step,
    under a linear warmup: over the first `warmup_steps` the value rises linearly from 0 to the schedule's value
    at the warmup's end, then follows the schedule."""
    step = _at_step(pos, total_steps)

    def main(s: float) -> float:
        return (sched_cos_restarts(lr_max, alpha * lr_max, s / total_steps, period, t_mul, m_mul)
                * decay_rate ** (s / decay_steps))

    if warmup_steps > 0 and step < warmup_steps:
        return main(warmup_steps) * step / warmup_steps
    return main(step)


def _warmup_restarts_decay(lr_max: float, total_steps: int, warmup_pct: float = 0.05,
                           warmup_steps: int | None = None, warmup_cycles: int | None = None, cycles: int = 3,
                           period: float | None = None, first_decay_steps: int | None = None, t_mul: float = 2.0,
                           m_mul: float = 1.0, alpha: float = 0.0, decay_rate: float = 0.1,
                           decay_steps: int | None = None) -> Schedule:
    per = _period(total_steps, cycles, period, first_decay_steps, t_mul)
    if warmup_cycles is not None:  # the warmup spans the first `warmup_cycles` restart cycles
        if warmup_cycles < 0:
            raise ValueError(f"warmup_cycles must be >= 0, got {warmup_cycles}")
        span = per * (warmup_cycles if t_mul == 1 else (t_mul**warmup_cycles - 1) / (t_mul - 1))
        warm = span * total_steps
    else:
        warm = _warmup_pct(total_steps, warmup_pct, warmup_steps) * total_steps
    if not 0 <= warm < total_steps:
        raise ValueError(f"the warmup ({warm:g} steps) must be shorter than the run ({total_steps} steps)")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (floor as a fraction of lr_max) must be in [0, 1], got {alpha}")
    if not decay_rate > 0:
        raise ValueError(f"decay_rate must be > 0, got {decay_rate}")
    return partial(sched_warmup_restarts_decay, lr_max, total_steps=total_steps, warmup_steps=warm, period=per,
                   t_mul=t_mul, m_mul=m_mul, alpha=alpha, decay_rate=decay_rate,
                   decay_steps=decay_steps or total_steps)


def _exp_decay(lr_max: float, total_steps: int, rate: float = 0.1, decay_steps: int | None = None,
               staircase: bool = False) -> Schedule:
    return exp_decay(lr_max, rate, decay_steps or total_steps, total_steps, staircase)


def _step_decay(lr_max: float, total_steps: int, every: int | None = None, gamma: float = 0.5) -> Schedule:
    return step_decay(lr_max, every or max(1, total_steps // 4), gamma, total_steps)


SCHEDULES = Registry("schedule", {
    "one_cycle": _one_cycle,  # fastai fit_one_cycle's lr curve: cos up lr_max/div -> lr_max, cos down to /div_final
    "constant": _constant,
    "cosine": _cosine,  # lr_max -> alpha * lr_max
    "warmup_cosine": _warmup_cosine,  # linear warmup, then cosine
    "cosine_restarts": _cosine_restarts,  # TF cosine_decay_restarts; default 3 cycles (t_mul 2) tiling the run
    # linear warmup into TF cosine_decay_restarts x exponential_decay, all counted from step 0 (decay_rate at the end)
    "warmup_restarts_decay": _warmup_restarts_decay,
    "exp_decay": _exp_decay,  # lr_max * rate^(step / decay_steps); default: rate reached at the last step
    "step": _step_decay,  # x gamma every `every` steps; default halving at each quarter
})


def make_schedule(name: str, lr_max: float, total_steps: int, **kw: Any) -> Schedule:
    """A named LR schedule f(pos) for `ParamScheduler({'lr': f})`; KeyError lists the names, ValueError the options."""
    builder = SCHEDULES[name]  # KeyError lists the known schedules
    if not lr_max > 0 or int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"make_schedule needs lr_max > 0 and an integer total_steps >= 1, got {lr_max}, "
                         f"{total_steps}")
    bad, accepted = SCHEDULES.check_kwargs(name, kw, skip=2)
    if bad:
        raise ValueError(f"schedule {name!r} does not take {bad}; it takes {accepted}")
    return builder(lr_max, int(total_steps), **kw)


def plot_schedule(sched: Schedule, total_steps: int, ax: Any = None, log: bool = False,
                  label: str | None = None) -> Any:
    """Plot the LR at every training step (pos = step / total_steps, as ParamScheduler sees it); returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    steps = list(range(int(total_steps)))
    ax.plot(steps, [sched(i / total_steps) for i in steps], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    if label:
        ax.legend()
    return ax
