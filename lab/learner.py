"""Learners: `restoration_learner` builds a plain fastai Learner for (LR, HR) data; no custom training loop.
Adversarial training builds on this module: `lab.gan.gan_learner`."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import fastai.callback.schedule  # noqa: F401  (adds fit_one_cycle and lr_find to Learner)
import torch
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.schedule import ParamScheduler, combined_cos
from fastai.learner import Learner
from fastai.optimizer import SGD, Adam
from torch import nn

from lab import vocab
from lab.callbacks import (
    EMA,
    BF16Autocast,
    ClipGrad,
    DataEpoch,
    DeviceDegrade,
    DivergenceGuard,
    LossPartsLogger,
    MoreValidation,
    TimeBudget,
)
from lab.data import Budget
from lab.losses import parse_loss
from lab.metrics import PSNR, SSIM
from lab.mixup import RestorationMixup
from lab.registry import Registry
from lab.schedules import make_schedule

AMP_MODES = (None, *vocab.AMP_MODES)
OPTIMIZERS = Registry("optimizer", {  # name -> f(betas, eps) -> fastai optimizer function
    "adam": lambda betas, eps: partial(Adam, mom=betas[0], sqr_mom=betas[1], eps=eps, decouple_wd=False),
    "adamw": lambda betas, eps: partial(Adam, mom=betas[0], sqr_mom=betas[1], eps=eps, decouple_wd=True),
    "sgd": lambda betas, eps: partial(SGD, mom=betas[0]),
}, lower=True)


def make_opt(name: str = "adam", betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8) -> Callable:
    """A fastai optimizer function by name: 'adam' (L2 weight decay), 'adamw' (decoupled), 'sgd' (momentum
    betas[0], as the notebook's `betas` parameter says)."""
    return OPTIMIZERS[name](betas, eps)


def make_loss(loss: str | Callable) -> Callable:
    """A loss module from a spec string such as 'l1 + 0.1*msssim' (see lab.losses), or a callable as is."""
    return loss if callable(loss) else parse_loss(loss)


def default_metrics(scale: int) -> list:
    """PSNR-Y and SSIM-Y with a `scale`-pixel border crop: the numbers papers report."""
    return [PSNR(y_only=True, crop_border=scale), SSIM(y_only=True, crop_border=scale)]


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 (AVX512-BF16 or AMX), where bf16 autocast roughly halves conv time."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, c, lambda: False)() for c in checks)


def amp_callbacks(amp: str | None, device: torch.device | str | None = None) -> list:
    """Mixed-precision callbacks: 'bf16' autocast (CPU with AMX, or CUDA), 'fp16' (CUDA), 'auto' picks per device."""
    if vocab.choose("amp mode", amp, AMP_MODES) in (None, "none"):
        return []
    cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if amp == "auto":
        if cuda:
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif cpu_has_fast_bf16():
            amp = "bf16"
        else:
            return []
    if amp == "fp16":
        if not cuda:
            raise ValueError("amp='fp16' needs CUDA; on CPU use amp='bf16'")
        return [MixedPrecision()]
    return [BF16Autocast()]


def restoration_learner(dls: Any, model: nn.Module, loss: str | Callable = "l1", metrics: list | None = None,
                        opt: str = "adam", lr: float = 1e-4, wd: float = 0.0, betas: Sequence[float] = (0.9, 0.999),
                        eps: float = 1e-8, amp: str | None = None, cbs: list | None = None, path: str | None = None,
                        scale: int | None = None) -> Learner:
    """A fastai Learner for restoration: `lr_find`, `fit_one_cycle` and `show_results` (LR / SR / HR) work on it."""
    scale = scale or getattr(dls, "scale", None) or getattr(model, "scale", 1)
    device = getattr(dls, "device", None)
    loss_func = make_loss(loss)
    parts = [LossPartsLogger()] if len(getattr(loss_func, "part_names", ())) > 1 else []
    more = [MoreValidation()] if getattr(dls, "extra_valid", None) else []
    cbs = [DataEpoch(), DeviceDegrade(), *parts, *more, *(cbs or []), *amp_callbacks(amp, device)]
    learn = Learner(dls, model, loss_func=loss_func, opt_func=make_opt(opt, betas, eps), lr=lr, wd=wd,
                    metrics=default_metrics(scale) if metrics is None else metrics, cbs=cbs,
                    path=path or ".", model_dir="checkpoints")
    return learn


def training_callbacks(clip: float = 0.0, clip_mode: str = "norm", ema: float = 0.0, guard: bool = False,
                       mixup: float = 0.0, mixup_space: str = "srgb", seed: int = 0) -> list:
    """The optional training callbacks a notebook's parameters switch on (each off at its zero value).

    clip > 0: hard clipping (`clip_mode` norm | value); clip < 0: soft clipping c * tanh(g / c), c = -clip
    (lab.callbacks.ClipGrad). ema: weight EMA decay, validation on the averaged weights. guard: undo NaN or
    spiking steps and lower the LR, stop as diverged if it persists. mixup: Beta(alpha, alpha) per-sample mixup
    of input and target in `mixup_space` (srgb | linear).
    """
    cbs: list = []
    if clip:
        cbs.append(ClipGrad(clip, clip_mode))
    if ema:
        cbs.append(EMA(ema))
    if guard:
        cbs.append(DivergenceGuard())
    if mixup:
        cbs.append(RestorationMixup(alpha=mixup, space=mixup_space, seed=seed))
    return cbs


class StepScheduler(ParamScheduler):
    """fastai's ParamScheduler with the position taken from the optimizer step within the run's budget:
    pos = (steps before this epoch + batch index) / total steps, exact at every step, also when the run's last
    epoch is shorter or a resumed fit skips epochs. With a time budget's clock, the later of step and time; the
    time alone when the clock replans the steps (`lab.callbacks.TimeBudget`)."""

    def __init__(self, scheds: dict[str, Callable[[float], float]], budget: Budget, clock: TimeBudget | None = None):
        super().__init__(scheds)
        self.budget, self.clock = budget, clock

    def before_batch(self):
        if self.clock is not None and self.clock.replans:  # the clock plans the steps: it alone is the position
            self._update_val(self.clock.pos())
            return
        pos = (self.budget.steps_before(self.epoch) + self.iter) / self.budget.steps
        self._update_val(pos if self.clock is None else max(pos, self.clock.pos()))


ONE_CYCLE_MOMS = (0.95, 0.85, 0.95)  # fastai's fit_one_cycle momentum curve


def schedule_callbacks(budget: Budget, lr: float, schedule: str = "one_cycle", clock: TimeBudget | None = None,
                       **schedule_kw: Any) -> list:
    """The scheduler of a named LR schedule (lab.schedules.SCHEDULES) over a budget (and a time budget's `clock`,
    whichever runs out first); 'one_cycle' also moves the momentum the way fastai's fit_one_cycle does."""
    kw = dict(schedule_kw)
    moms = kw.pop("moms", ONE_CYCLE_MOMS) if schedule == "one_cycle" else None
    scheds = {"lr": make_schedule(schedule, lr, budget.steps, **kw)}
    if moms is not None:
        scheds["mom"] = combined_cos(kw.get("pct_start", 0.25), *moms)
    return [StepScheduler(scheds, budget, clock)]


def as_budget(learn: Learner, epochs: int | Budget) -> Budget:
    """A Budget as is, or `epochs` whole passes over the learner's training loader."""
    if isinstance(epochs, Budget):
        return epochs
    n = len(learn.dls.train)
    return Budget(int(epochs) * n, n, n)


def fit_schedule(learn: Learner, epochs: int | Budget, lr: float, schedule: str = "one_cycle", start_epoch: int = 0,
                 clock: TimeBudget | None = None, **schedule_kw: Any) -> None:
    """Fit a budget (`lab.data.Budget`, or a number of epochs) with a named LR schedule over the whole run.

    `start_epoch` > 0 continues a resumed run: earlier epochs are skipped, the schedule position follows. With a
    `clock` (a `TimeBudget` in `learn.cbs`) the run also ends when its time is up, the schedule completed.
    """
    budget = as_budget(learn, epochs)
    learn.fit(budget.epochs, lr, cbs=schedule_callbacks(budget, lr, schedule, clock, **schedule_kw),
              start_epoch=start_epoch)
