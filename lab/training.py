"""The training lifecycle of a run, so a notebook keeps only the visible steps: the network to train (fresh or
fine-tuned from other weights), the phases (plain training, then optionally the adversarial one), resuming either
phase exactly, one or several processes, and how the run ends (done or diverged, with its final weights).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from fastai.learner import Learner
from torch import nn

from lab.callbacks import ThreadTuner, TimeBudget, divergence_outcome
from lab.data import Budget, apply_budget
from lab.distributed import fit_distributed, rank
from lab.learner import as_budget, fit_schedule
from lab.models import checkpoint_payload, create, init_from_checkpoint
from lab.recording import load_resume_state, unwrap_model
from lab.runs import Run, find, sibling_checkpoint
from lab.utils import user_path


class KernelParams(Protocol):
    """What training asks of a notebook's session (`lab.session.Session`): the parameters the kernel holds when a
    phase starts, recorded as the run's (None when no live kernel drives the run)."""

    def sync_params(self, phase: str) -> dict[str, Any] | None:
        """The kernel's parameters at the start of `phase`, or None."""


def build_model(name: str, kwargs: dict[str, Any] | None = None, scale: int = 2,
                linear_light: bool = False) -> nn.Module:
    """The registered network `name` at `scale`; with `linear_light` wrapped so it sees and predicts linear light
    while its inputs, outputs, loss and metrics stay sRGB."""
    kwargs = dict(kwargs or {})
    net = create("linear_light", model=name, model_kwargs=kwargs, scale=scale) if linear_light else \
        create(name, scale=scale, **kwargs)
    net.built_from = {"model": name, "model_kwargs": kwargs, "scale": scale, "linear_light": linear_light}
    return net


def check_built(params: dict[str, Any], *objs: Any) -> None:
    """Refuse to train when an object (the data loaders, the network) was built from parameter values the kernel no
    longer holds: a parameter fixed after its cell ran would otherwise be recorded though it did not train."""
    stale = {k: (v, params[k]) for o in objs for k, v in getattr(o, "built_from", {}).items()
             if k in params and params[k] != v}
    if stale:
        what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in stale.items())
        raise ValueError(f"the parameters changed after the data or the model was built ({what}); run the cells "
                         "that build them again (or Run All), so the run trains what it records")


def init_weights(run: Run, net: nn.Module, source: str | os.PathLike) -> dict[str, Any]:
    """Fine-tune start: copy the matching tensors of `source` into `net`: a checkpoint path, or a run id or name
    (its result: a GAN run's final generator) optionally with the phase to take ('42:gan', '42:pretrain'). The
    choice is recorded in the run (the ledger shows it) and returned ({checkpoint, run, phase, loaded, ...})."""
    src, ref, phase = user_path(source), None, None
    if not src.is_file():
        ref, sep, phase = str(source).rpartition(":")
        ref, phase = (ref, phase) if sep and phase in ("gan", "pretrain") else (str(source), None)
        src = find(ref, run.dir.parent).weights_checkpoint(phase)
    got = {"checkpoint": str(src), "run": ref, "phase": phase, **init_from_checkpoint(net, src)}
    run.write_json("init_from", got)
    print(f"initialised {len(got['loaded'])} tensors from {src}; kept fresh: {got['skipped'] + got['missing']}")
    return got


@dataclass
class Outcome:
    """How a training phase ended: whether the divergence guard stopped it, what it caught, how long it took (over
    every attempt of a resumed run: the time recorded before its checkpoint included)."""

    diverged: bool = False
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    minutes: float = 0.0


def elapsed_before(run: Run, phase: str) -> float:
    """Seconds a phase of `run` had trained before a resume: the `elapsed_s` of its last kept history record."""
    kept = [h for h in run.history if h.get("phase", "") == phase]
    return float(kept[-1].get("elapsed_s", 0.0)) if kept else 0.0


def time_budget_plan(budget: Budget, validations: int = 10, first_steps: int = 2000) -> Budget:
    """The first plan of a time-budgeted run: `validations` epochs (checkpointed as often as `budget` says), the
    first epoch's loader holding `first_steps` steps, more than its share of the time takes on a CPU (on a faster
    device the first epoch ends early). Only a start: `lab.callbacks.TimeBudget` replans each epoch by the clock."""
    every = min(budget.save_every_epochs, validations)
    return Budget(validations * first_steps, first_steps, first_steps * every)


def use_budget(learn: Learner, budget: Budget) -> None:
    """Make `budget` the step budget of the learner's loaders (the data epochs, the history's steps follow it)."""
    apply_budget(learn.dls, budget)


def fit(learn: Learner, budget: int | Budget, lr: float, schedule: str = "one_cycle",
        schedule_kwargs: dict[str, Any] | None = None, *, run: Run | None = None, resume: str | os.PathLike = "",
        procs: int = 1, make_learner: Callable[[], Learner] | None = None, time_budget: float = 0.0,
        session: KernelParams | None = None) -> Outcome:
    """Train a step budget (`dls.budget`, or a number of epochs) with a named schedule over the whole run; from
    checkpoint `resume` (a run's `last`) it continues where that run stopped, its history cut back to that
    checkpoint. With `procs` > 1 the fit runs on that many processes (DDP), each building its learner with
    `make_learner`; the trained weights come back into `learn`'s network. The guard's events are recorded in
    `run`. `time_budget` > 0: train for that many minutes, the steps and validations planned from the clock
    each epoch, the schedule spread over the time and completed when it ends (`lab.callbacks.TimeBudget`); the
    steps the budget became are recorded in the run's data record (`budget`, `time_budget_steps`); on CPU the
    thread count is re-picked from the measured steps (`lab.callbacks.ThreadTuner`; `threads_picked`). `session` (a
    notebook's `lab.session.Session`): the parameters its kernel holds now are recorded, and training is refused
    if the data or network were built from other values."""
    kw = dict(schedule_kwargs or {})
    budget = as_budget(learn, budget)
    now = session.sync_params("train") if session is not None else None
    if now is not None:
        check_built(now, learn.dls, unwrap_model(learn.model))
    t0, replan = time.perf_counter(), False
    if time_budget:
        if procs > 1:
            raise ValueError(f"time_budget={time_budget!r} with procs={procs}: a time budget trains in one process")
        if not isinstance(time_budget, (int, float)) or isinstance(time_budget, bool) or time_budget < 0:
            raise ValueError(f"time_budget must be minutes >= 0, got {time_budget!r}")
        replan = getattr(learn.dls, "budget", None) is not None
        if not resume and replan:
            given = getattr(learn.dls, "valid_every", 0)  # then as many validations as the step budget has
            budget = time_budget_plan(learn.dls.budget, learn.dls.budget.epochs if given else 10)
            use_budget(learn, budget)
        print(f"time budget {time_budget:g} min, {budget.epochs} validations"
              + ("; the steps follow the clock" if replan else ""))
    clock = TimeBudget(time_budget * 60 - (time.perf_counter() - t0), replan=replan) if time_budget else None
    on_cpu = all(p.device.type == "cpu" for p in learn.model.parameters())
    tuner = ThreadTuner() if clock is not None and on_cpu and torch.get_num_threads() > 1 else None

    before_s = [0.0]  # training time of the attempts before a resume (set in one_fit)

    def one_fit(lrn: Learner) -> None:
        nonlocal budget
        for cb in (clock, tuner):
            if cb is not None:
                lrn.add_cb(cb)
        try:
            start = load_resume_state(lrn, resume) if resume else 0
            if clock is not None and clock.budget_state:  # the plan of the interrupted run
                budget = Budget(**clock.budget_state)
                use_budget(lrn, budget)
            if start:
                print(f"resuming at epoch {start} of {budget.epochs} (step {budget.steps_before(start)} of "
                      f"{budget.steps}) from {resume}")
                if run is not None and rank() == 0:
                    run.truncate_history("", start)
                    before_s[0] = elapsed_before(run, "")
            fit_schedule(lrn, budget, lr, schedule, start_epoch=start, clock=clock, **kw)
        finally:
            for cb in (clock, tuner):
                if cb is not None:
                    lrn.remove_cb(cb)
            if tuner is not None:
                tuner.restore()

    if procs > 1:
        if make_learner is None:
            raise ValueError(f"procs={procs} needs make_learner, a function that builds the learner in each process")
        res = fit_distributed(make_learner, one_fit, procs)
        unwrap_model(learn.model).load_state_dict(res["state_dict"])
    else:
        one_fit(learn)
        res = divergence_outcome(learn)
    out = Outcome(res["diverged"], res["guard_events"], (before_s[0] + time.perf_counter() - t0) / 60)
    if clock is not None and run is not None and rank() == 0:
        data = run.read("data", {}) or {}
        done = learn.dls.budget
        run.write_json("data", {**data, "budget": done.to_dict(), "time_budget_minutes": time_budget,
                                "time_budget_cut": clock.cut, "time_budget_steps": done.steps,
                                "threads_picked": tuner.picks if tuner is not None else []})
        print(f"time budget {time_budget:g} min: {done.steps} steps in {done.epochs} epochs")
    if run is not None and out.guard_events:
        run.write_json("guard_events", out.guard_events)
    if out.diverged:
        print("training diverged; evaluating the last good weights:", out.guard_events[-1])
    return out


def fit_gan(glearn: Learner, epochs: int, lr: float, *, run: Run | None = None, resume: str | os.PathLike = "",
            critic_pretrain: int = 0, session: KernelParams | None = None) -> Outcome:
    """The adversarial phase on a `lab.gan.gan_learner`: `critic_pretrain` critic-only batches first (NoGAN), then
    `epochs` epochs. Resuming a run (`resume`, its plain phase's `last`) continues this phase where it was cut,
    critic and switcher state included, when the phase had started; otherwise the phase starts afresh. `session`:
    as in `fit`."""
    now = session.sync_params("gan") if session is not None else None
    if now is not None:
        check_built(now, glearn.dls, unwrap_model(glearn.model))
    gan_resume = sibling_checkpoint(resume, "last", "gan") if resume else None
    start, before = 0, 0.0
    if gan_resume is not None and gan_resume.is_file():
        start = load_resume_state(glearn, gan_resume)
        print(f"resuming the adversarial phase at epoch {start} of {epochs} from {gan_resume}")
        if run is not None:
            run.truncate_history("gan", start)
            before = elapsed_before(run, "gan")
    elif critic_pretrain:
        # lab.gan imports fastai.vision.gan, which loads fastai.vision.all and torchvision (seconds at every
        # notebook start); only the adversarial phase needs it
        from lab.gan import pretrain_critic  # lazy: see above

        print("critic-only steps:", pretrain_critic(glearn, critic_pretrain, lr))
    t0 = time.perf_counter()
    glearn.fit(epochs, lr, start_epoch=start)
    return Outcome(minutes=(before + time.perf_counter() - t0) / 60)


def finish(run: Run, net: nn.Module, summary: dict[str, Any], outcome: Outcome,
           session: KernelParams | None = None) -> dict[str, Any]:
    """End the run: its final weights, its summary metrics, and the status that says what happened (diverged when
    the guard stopped the training, else done); returns the summary. `session`: its kernel's parameters now are
    the run's last record of them."""
    if session is not None:
        session.sync_params("finish")
    run.save_checkpoint(checkpoint_payload(net), "final")
    run.finish(summary, status="diverged" if outcome.diverged else "done")
    return summary
