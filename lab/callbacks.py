"""Small fastai callbacks for restoration training: gradient clipping (hard/soft), weight EMA, a divergence guard,
bf16 autocast, per-part loss logging and the data epoch. Each does one thing; add them with `cbs=[...]` to a
Learner. Recording a run (history, checkpoints, samples) is `lab.recording`.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections import deque
from typing import Any, Callable, Iterable

import torch
from fastai.callback.core import Callback, CancelBatchException, CancelFitException, CancelTrainException
from fastai.callback.fp16 import MixedPrecision
from fastai.learner import Recorder
from fastai.torch_core import find_bs
from torch import nn

from lab import vocab
from lab.data import apply_budget
from lab.metrics import quantize

CLIP_MODES = vocab.CLIP_MODES
ON_FAIL = ("stop", "raise")


def soft_clip_(tensors: Iterable[torch.Tensor], c: float) -> None:
    """Soft-clip in place, elementwise: g -> c * tanh(g / c) (smooth, odd, monotone, |out| <= c, ~g for |g| << c)."""
    if not c > 0:
        raise ValueError(f"soft clipping needs c > 0, got {c}")
    for g in tensors:
        g.div_(c).tanh_().mul_(c)


class ClipGrad(Callback):
    """Clip gradients before the optimizer step.

    value > 0: hard clipping; mode 'norm' rescales all gradients together so their global L2 norm is <= value
    (torch.nn.utils.clip_grad_norm_), mode 'value' clamps each element to [-value, value].
    value < 0: soft clipping with c = |value|: every gradient element g becomes c * tanh(g / c) - smooth,
    monotone, bounded by c, and within a relative 1e-6 of g when |g| < 1e-3 c.
    value == 0: off. `last_norm` holds the global gradient norm before clipping (hard 'norm' mode).
    Runs after fastai's MixedPrecision has unscaled the gradients (same order as fastai's GradientClip).
    """

    order = MixedPrecision.order + 1

    def __init__(self, value: float = 1.0, mode: str = "norm"):
        self.value, self.mode, self.last_norm = float(value), vocab.choose("clip mode", mode, CLIP_MODES), None

    def before_step(self):
        grads = [p.grad for p in self.learn.model.parameters() if p.grad is not None]
        if self.value > 0 and self.mode == "norm":
            self.last_norm = float(nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.value))
        elif self.value > 0:
            nn.utils.clip_grad_value_(self.learn.model.parameters(), self.value)
        elif self.value < 0:
            soft_clip_(grads, -self.value)


class EMA(Callback):
    """Exponential moving average of the weights: ema <- decay * ema + (1 - decay) * w after every step.

    Validation (and so the recorded metrics) runs on the EMA weights, swapped in before and out after it.
    With `apply_at_end=True` the model keeps the EMA weights after `fit` (the raw ones stay in `raw_state`).
    Floating-point parameters are averaged; buffers (BatchNorm statistics) are copied. A step that leaves a
    non-finite weight is not averaged in. `warmup=True` uses decay min(decay, (1 + n) / (10 + n)) at update n.
    EMA state persists across `fit` calls; it is idle during `lr_find`.
    """

    order = 70

    def __init__(self, decay: float = 0.999, apply_at_end: bool = True, warmup: bool = False):
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.apply_at_end, self.warmup = decay, apply_at_end, warmup
        self.ema_state: dict[str, torch.Tensor] | None = None
        self.raw_state: dict[str, torch.Tensor] | None = None
        self.updates = 0

    def before_fit(self):
        self.run, self.stepped = not hasattr(self.learn, "lr_finder"), False
        model = self.learn.model
        if self.run and self.ema_state is None:
            self.ema_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.averaged = {k for k, p in model.named_parameters() if p.is_floating_point()}

    @torch.no_grad()
    def after_step(self):
        state = self.learn.model.state_dict()
        if self.averaged and not torch.stack([torch.isfinite(state[k]).all() for k in self.averaged]).all():
            return
        d = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        for k, v in state.items():
            if k in self.averaged:
                self.ema_state[k].lerp_(v, 1 - d)
            else:
                self.ema_state[k].copy_(v)
        self.updates, self.stepped = self.updates + 1, True

    def _swap_in(self):
        self.raw_state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
        self.learn.model.load_state_dict(self.ema_state)

    def before_validate(self):
        self._swap_in()

    def after_validate(self):
        self.learn.model.load_state_dict(self.raw_state)

    def after_fit(self):
        if self.apply_at_end and self.stepped:
            self._swap_in()

    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the EMA weights, keyed like `model.state_dict()`."""
        if self.ema_state is None:
            raise ValueError("EMA has no state yet: it is created when fit starts")
        return {k: v.clone() for k, v in self.ema_state.items()}


def _mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """`x` averaged over the processes of a distributed run (itself otherwise): a NaN on any rank reaches all."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


class LossWatch:
    """Judges each training loss against the recent good ones: bad when it is not finite, or when it exceeds
    `spike_factor` x the median of the last `window` good losses (once `min_history` are known; `spike_factor=None`
    checks finiteness only)."""

    def __init__(self, spike_factor: float | None = 10.0, window: int = 50, min_history: int = 10):
        if spike_factor is not None and not spike_factor > 1:
            raise ValueError(f"spike_factor must be > 1 (or None), got {spike_factor}")
        self.spike_factor, self.min_history = spike_factor, min_history
        self.history: deque[float] = deque(maxlen=window)

    def why_bad(self, loss: float) -> str | None:
        """Why `loss` is bad, or None when it is good (and then it joins the history)."""
        if not math.isfinite(loss):
            return "non-finite loss"
        if self.spike_factor and len(self.history) >= self.min_history:
            med = statistics.median(self.history)
            if loss > self.spike_factor * med:
                return f"loss spike ({loss:.4g} > {self.spike_factor} x median {med:.4g})"
        self.history.append(loss)
        return None


class Snapshot:
    """A learner's weights and optimizer state at one moment, to go back to; restoring keeps the optimizer's
    current (scheduled) hyper-parameters."""

    def __init__(self, learn: Any):
        self.model = {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
        self.opt = copy.deepcopy(learn.opt.state_dict())

    def restore(self, learn: Any) -> None:
        """Put the saved weights and optimizer state back into `learn`."""
        learn.model.load_state_dict(self.model)
        sd = copy.deepcopy(self.opt)
        if "hypers" in sd:  # fastai Optimizer
            sd["hypers"] = learn.opt.hypers
        elif "param_groups" in sd:  # torch optimizer behind OptimWrapper
            for saved, cur in zip(sd["param_groups"], learn.opt.opt.param_groups):
                saved.update({k: v for k, v in cur.items() if k != "params"})
        learn.opt.load_state_dict(sd)


class DivergenceGuard(Callback):
    """Catch a diverging step, undo it and retry with a smaller learning rate; give up after `max_retries`.

    A bad loss (`LossWatch`) skips its step, restores the last `Snapshot` (taken at the start of fit and every
    `snapshot_every` good steps) and multiplies a persistent LR multiplier `lr_mult` by `lr_factor`; the multiplier
    is applied to the optimizer's `lr` right before each step and undone right after, so it survives fastai's
    ParamScheduler. The skipped batch is hidden from the Recorder (its targets are cleared). After more than
    `max_retries` detections in one fit `learn.diverged` is set True and the fit stops (on_fail='stop') or raises
    RuntimeError (on_fail='raise'), the last good weights in place. `events` lists every detection; `lr_mult`
    carries over to later fits. In a distributed run the ranks judge the loss averaged over all of them, so they
    skip, restore and stop together (one rank stopping alone would leave the others waiting in DDP's gradient
    reduction). Memory: one copy of the weights and of the optimizer state. Idle during `lr_find`.
    """

    order, run_valid = 20, False

    def __init__(self, spike_factor: float | None = 10.0, window: int = 50, min_history: int = 10,
                 snapshot_every: int = 20, lr_factor: float = 0.5, max_retries: int = 3, on_fail: str = "stop"):
        if window < 1 or min_history < 1 or snapshot_every < 1 or max_retries < 0:
            raise ValueError(f"window, min_history, snapshot_every must be >= 1 and max_retries >= 0, got "
                             f"{window}, {min_history}, {snapshot_every}, {max_retries}")
        LossWatch(spike_factor, window, min_history)  # checks spike_factor
        if not 0 < lr_factor <= 1:
            raise ValueError(f"lr_factor must be in (0, 1], got {lr_factor}")
        self.watch_args, self.on_fail = (spike_factor, window, min_history), vocab.choose("on_fail", on_fail, ON_FAIL)
        self.snapshot_every, self.lr_factor, self.max_retries = snapshot_every, lr_factor, max_retries
        self.lr_mult, self.events = 1.0, []

    def before_fit(self):
        self.run, self.fresh = not hasattr(self.learn, "lr_finder"), True

    def before_train(self):
        if self.fresh:  # the first training epoch of a real fit (not validate/get_preds, which also call before_fit)
            self.learn.diverged, self.fresh, self.retries, self._base_lrs = False, False, 0, None
            self.watch, self.snapshot, self.since_snapshot = LossWatch(*self.watch_args), Snapshot(self.learn), 0

    def after_loss(self):
        loss = float(_mean_over_ranks(self.learn.loss.detach().float().mean()))
        why = self.watch.why_bad(loss)
        if why is None:
            if self.since_snapshot >= self.snapshot_every:
                self.snapshot, self.since_snapshot = Snapshot(self.learn), 0
            self.since_snapshot += 1
            return
        self.snapshot.restore(self.learn)
        self.lr_mult *= self.lr_factor
        self.events.append({"iter": self.learn.train_iter, "epoch": self.learn.epoch, "loss": loss, "reason": why,
                            "lr_mult": self.lr_mult})
        self.learn.yb = ()  # fastai's Recorder skips batches without targets: keep the NaN out of smooth_loss
        self.retries += 1
        if self.retries <= self.max_retries:
            raise CancelBatchException()
        self.learn.diverged = True
        if self.on_fail == "raise":
            raise RuntimeError(f"training diverged: {why} at iteration {self.learn.train_iter} after "
                               f"{self.max_retries} retries")
        raise CancelFitException()

    def before_step(self):
        if self.lr_mult != 1.0:
            self._base_lrs = [h["lr"] for h in self.learn.opt.hypers]
            self.learn.opt.set_hyper("lr", [lr * self.lr_mult for lr in self._base_lrs])

    def after_step(self):
        if self._base_lrs is not None:
            self.learn.opt.set_hyper("lr", self._base_lrs)
            self._base_lrs = None


def divergence_outcome(learn: Any) -> dict[str, Any]:
    """Whether a learner's DivergenceGuard stopped its last fit, and what the guard caught (plain, for JSON)."""
    guard = getattr(learn, "divergence_guard", None)
    return {"diverged": bool(getattr(learn, "diverged", False)), "guard_events": list(getattr(guard, "events", []))}


def _to_float(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() and x.dtype != torch.float64 else x
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_float(v) for k, v in x.items()}
    return x


class BF16Autocast(Callback):
    """bfloat16 autocast for the networks' forward passes on CPU or CUDA; their outputs come back as float32, so the
    loss and the metrics are computed in fp32. No GradScaler is needed (bf16 has fp32's range).

    Autocast is entered and left by forward hooks on each network (`networks()`: the learner's model; a GAN's
    generator and critic, `lab.gan.GANBF16Autocast`), added for the fit and removed after it; the closing hook is
    registered with `always_call=True`, so a forward that raises never leaves autocast switched on.
    Why not fastai's `MixedPrecision(amp_mode="bf16")`: in fastai 2.8 it builds `autocast("cuda")` and a CUDA
    GradScaler whatever the device, so on a CPU it autocasts nothing; and it enters autocast in `before_batch` and
    leaves it in `after_loss`, so a loss with convolutions (VGG, SSIM) would run in bf16 too, and an exception in
    the forward would leave autocast on for the rest of the process (fastai runs no event on an error).
    `device_type`: 'cpu' or 'cuda'; default: where each network's parameters are. On CUDA, fp16 with loss scaling is
    fastai's `MixedPrecision()`; `lab.learner.amp_callbacks` picks between them.
    """

    order = MixedPrecision.order

    def __init__(self, device_type: str | None = None):
        if device_type not in (None, "cpu", "cuda"):
            raise ValueError(f"unknown autocast device {device_type!r}; accepted: 'cpu', 'cuda' or None (auto)")
        self.device_type, self.handles, self.open = device_type, [], []

    def networks(self) -> list[nn.Module]:
        """The modules whose forward runs under autocast."""
        return [self.learn.model]

    def before_fit(self):
        self.after_fit()  # hooks left by a fit that raised are replaced, not stacked
        for net in self.networks():
            dev = self.device_type or next(net.parameters()).device.type
            if dev not in ("cpu", "cuda"):
                raise ValueError(f"bf16 autocast supports 'cpu' and 'cuda' models, this one is on {dev!r}")
            self.handles += [net.register_forward_pre_hook(lambda m, a, dev=dev: self._enter(dev)),
                             net.register_forward_hook(self._leave, always_call=True)]

    def _enter(self, dev: str) -> None:
        ctx = torch.autocast(dev, dtype=torch.bfloat16)
        ctx.__enter__()
        self.open.append(ctx)

    def _leave(self, module: nn.Module, args: Any, out: Any) -> Any:
        self.open.pop().__exit__(None, None, None)
        return None if out is None else _to_float(out)

    def after_fit(self):
        for h in self.handles:
            h.remove()
        self.handles = []


class LossPartsLogger(Callback):
    """Log each part of a `lab.losses.CombinedLoss` per epoch as `train_<part>`: the mean over training batches
    (weighted by batch size) of the part's unweighted value. The columns sit after fastai's train columns in
    `recorder.metric_names`/`recorder.values`, so the progress table, CSVLogger and run records show them.
    Batches skipped by `DivergenceGuard` are not counted. Does nothing for a loss without `part_names`.
    """

    order = Recorder.order + 5  # after the Recorder builds its names and logs train values, before loggers print

    def before_fit(self):
        self.names = list(getattr(self.learn.loss_func, "part_names", []))
        if not self.names or not hasattr(self.learn, "recorder"):
            self.names = []
            return
        mn = list(self.recorder.metric_names)
        at = mn.index("valid_loss") if "valid_loss" in mn else (len(mn) - 1 if mn[-1] == "time" else len(mn))
        self.recorder.metric_names = type(self.recorder.metric_names)(
            mn[:at] + [f"train_{n}" for n in self.names] + mn[at:])

    def before_train(self):
        self.sums, self.count = dict.fromkeys(self.names, 0.0), 0

    def after_loss(self):
        if not self.training or not self.names:
            return
        bs = find_bs(self.learn.yb)
        for n, v in self.learn.loss_func.last_parts.items():
            if n in self.sums:
                self.sums[n] += v * bs
        self.count += bs

    def after_train(self):
        if self.names:
            self.recorder.log += [self.sums[n] / self.count if self.count else float("nan") for n in self.names]


class MoreValidation(Callback):
    """Score the further validation sets (`dls.extra_valid`, {prefix: ImageDataset}) after each validation with the
    learner's image metrics, as `<prefix>_psnr_y`, `<prefix>_ssim_y`: columns after the validation ones in
    `recorder.metric_names`/`recorder.log`, so the progress table, history and the best checkpoint's `monitor` see them.
    Runs while the validated weights are in (EMA's averaged ones: EMA restores its weights after this)."""

    order = Recorder.order + 5

    def before_fit(self):
        self.sets = dict(getattr(self.dls, "extra_valid", None) or {})
        self.mets = [m for m in self.learn.metrics if hasattr(m, "score")]
        if not self.sets or not hasattr(self.learn, "recorder"):
            self.sets = {}
            return
        mn = list(self.recorder.metric_names)
        at = len(mn) - 1 if mn[-1] == "time" else len(mn)
        names = [f"{p}_{m.name}" for p in self.sets for m in self.mets]
        self.recorder.metric_names = type(self.recorder.metric_names)(mn[:at] + names + mn[at:])

    @torch.no_grad()
    def after_validate(self):
        if not self.sets or hasattr(self.learn, "gather_preds") or hasattr(self.learn, "lr_finder"):
            return
        net = getattr(self.learn.model, "generator", self.learn.model)
        device = next(net.parameters()).device
        for ds in self.sets.values():
            sums = [0.0] * len(self.mets)
            for i in range(len(ds)):
                lr, hr = ds[i]
                pred = quantize(net(lr[None].to(device)).float()).cpu()
                for k, m in enumerate(self.mets):
                    sums[k] += float(m.score(pred, hr[None]).sum())
            self.recorder.log += [v / max(1, len(ds)) for v in sums]


class DeviceDegrade(Callback):
    """Degrade a training batch on the device it trains on, when the loader's dataset leaves it there
    (`degrade_on='device'`: the batch holds HR patches, each item's degradation params and flip code); each item
    gets the LR the loader would have made from the same draws (`lab.data.PatchDataset.finish_batch`)."""

    order = -30  # before every callback that reads the batch (mixup, autocast)

    def before_batch(self):
        got = (*self.xb, *self.yb)
        ds = getattr(self.dls.train, "dataset", None)
        if not self.training or getattr(ds, "degrade_on", "loader") != "device" or len(got) != 3:
            return
        lr, hr = ds.finish_batch(*got)
        self.learn.xb, self.learn.yb = (lr,), (hr,)


class DataEpoch(Callback):
    """Tell the training DataLoader the epoch before it is iterated, so its patches, degradations and shuffle
    depend on (seed, epoch) alone: a run resumed at epoch k sees the batches an uninterrupted run saw.

    `offset` is added to the fit's epoch: a second phase on the same loader (the adversarial one) draws data
    epochs `offset`, `offset + 1`, ... instead of repeating the first phase's patches."""

    order = -20

    def __init__(self, offset: int = 0):
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset={offset!r}: expected an int >= 0 (the data epoch of the fit's first epoch)")
        self.offset = offset

    def before_train(self):
        dl = self.learn.dls.train
        dl = getattr(dl, "dl", dl)  # under DDP fastai wraps the loader in a DistributedDL
        if hasattr(dl, "set_epoch"):
            dl.set_epoch(self.offset + self.learn.epoch)


class TimeBudget(Callback):
    """End training after `seconds` of wall time, validations included, with the LR schedule completed.

    The scheduler's position follows the clock (`lab.learner.StepScheduler`), so the last step lands at the
    schedule's end. With `replan` (a step budget on the loaders) the run's epochs are planned from the clock, not
    from one early measurement: each epoch starts with the time left shared evenly among the epochs still to
    come (the validations' measured time set aside), ends at its share's mark, and its loader holds `margin` x
    the steps that the last epoch's measured rate fits, so the clock, not the step count, ends it; the budget
    then records the steps each epoch really took; when the last epoch's loader runs out before the clock (its
    rate came from slower steps), one more epoch follows. The epoch that runs out of time is cut after that step,
    validated and checkpointed as the run's last. A resumed run continues the clock where its checkpoint was.
    """

    order = 99  # after every other callback's after_batch (recorder, scheduler, guard)

    def __init__(self, seconds: float, replan: bool = False, step_s: float = 0.0, margin: float = 3.0):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"time budget must be a number of seconds > 0, got {seconds!r}")
        if not margin >= 1:
            raise ValueError(f"margin must be >= 1 (loader steps over the steps that fit), got {margin!r}")
        self.seconds, self.spent, self.cut, self.budget_state = float(seconds), 0.0, False, None
        self.replans, self.step_s, self.margin, self.valid_s = replan, float(step_s), float(margin), []
        self.t0, self.mark, self.ended_early, self.t_valid = time.perf_counter(), math.inf, False, None
        self.epochs_max: int | None = None

    def before_fit(self):
        self.t0, self.cut, self.t_valid = time.perf_counter() - self.spent, False, None
        self.epochs_max = None  # the fit's range of epochs (an epoch that ran short may add one up to it)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def pos(self) -> float:
        """The fraction of the time budget spent, in [0, 1]."""
        return min(1.0, self.elapsed / self.seconds)

    def before_epoch(self):
        if self.epochs_max is None:
            self.epochs_max = self.n_epoch
        if self.cut or self.epoch >= self.n_epoch:
            raise CancelFitException
        if self.t_valid is not None:  # a validation as the plan sees it: validating, recording, checkpointing
            self.valid_s = [*self.valid_s[-4:], time.perf_counter() - self.t_valid]
        self.ended_early, self.mark, self.t_valid = False, math.inf, None
        budget = getattr(self.dls, "budget", None)
        if not self.replans or budget is None:
            return
        left, share, steps = plan_epoch(self.seconds - self.elapsed, self.n_epoch - self.epoch, self.valid_s,
                                        self.step_s, self.margin)
        self.learn.n_epoch = self.epoch + left  # fewer validations when they would eat the time
        self.mark = self.elapsed + share if left > 1 else math.inf  # the last epoch ends with the budget
        apply_budget(self.dls, budget.replan(self.epoch, steps or budget.steps_per_epoch, self.n_epoch))

    def before_train(self):
        self.t_train = time.perf_counter()

    def after_train(self):
        self.t_valid = time.perf_counter()
        if self.iter >= 0:  # the measured rate of this epoch (loading and callbacks included) plans the next
            self.step_s = (self.t_valid - self.t_train) / (self.iter + 1)
        valid = self.valid_s[-1] if self.valid_s else 0.0
        if (self.replans and not self.ended_early and self.epoch == self.n_epoch - 1
                and self.n_epoch < (self.epochs_max or 0) and self.elapsed + valid + self.step_s < self.seconds):
            # the last epoch's loader ran out before the clock (it was sized from a slower rate: a burst of load,
            # a warm-up): one more epoch, planned from this rate, trains until the time is spent
            self.learn.n_epoch += 1

    def after_validate(self):
        if self.replans and not self.cut and self.elapsed >= self.seconds:  # the time ran out while validating:
            self.cut = True  # this epoch is the last (checkpointed as such), the budget the steps taken
            budget = self.dls.budget
            apply_budget(self.dls, budget.cut(self.epoch, budget.steps_in(self.epoch)))
            self.learn.n_epoch = self.epoch + 1

    def after_batch(self):
        if not self.training:
            return
        t = self.elapsed
        if t < self.seconds and t < self.mark:
            return
        if self.valid_s and t + self.valid_s[-1] + self.step_s >= self.seconds:
            t = self.seconds  # no step would fit after this epoch's validation: it is the last
        budget = getattr(self.dls, "budget", None)
        if budget is not None:
            done = budget.cut(self.epoch, self.iter + 1)
            apply_budget(self.dls, done if t >= self.seconds else
                         done.replan(self.epoch + 1, budget.steps_per_epoch, self.n_epoch))
        self.ended_early = True
        if t >= self.seconds:
            self.cut = True
            self.learn.n_epoch = self.epoch + 1  # so the checkpointing callbacks treat this epoch as the last
        raise CancelTrainException

    def after_cancel_train(self):
        # fastai's Recorder (order 50) drops a cancelled epoch's train loss from its log, which shifts every later
        # column of the row by one (valid_loss read as train_loss, PSNR as valid_loss...); the cut epoch's steps
        # really trained, so its smoothed train loss is kept
        if self.ended_early and hasattr(self.learn, "recorder"):
            self.learn.recorder.cancel_train = False

    def resume_state(self) -> dict[str, Any]:
        budget = getattr(self.dls, "budget", None)
        return {"spent": self.elapsed, "step_s": self.step_s, "valid_s": self.valid_s,
                "budget": None if budget is None else budget.state()}

    def restore_resume_state(self, state: dict[str, Any]) -> None:
        self.spent, self.budget_state = float(state["spent"]), state.get("budget")
        self.step_s = float(state.get("step_s", self.step_s))
        self.valid_s = list(state.get("valid_s", self.valid_s))


class ThreadTuner(Callback):
    """Keep torch's CPU thread count at the one that trains fastest now: at the start and every `every_s` seconds,
    time `probe` steps at each count of `counts` (the first step after a switch not counted) and keep the fastest.

    Why: a neighbour that takes a core stalls every parallel op of a pool that counts on it; the demo beside one
    busy process trained 30 steps a minute at 2 threads and 150 at 1 (174 at 1 and 244 at 2 when quiet). A
    time-budgeted run then spends its minutes at the count that is fastest. `picks` is [(step, threads), ...], the
    step counted from this fit's start (a resumed attempt counts from its resume); the count the fit started with
    is restored at its end (`restore`). `clock` times the steps (a test's own clock makes the picks exact)."""

    order = 98  # after every other callback's after_batch but TimeBudget's: the step's time includes theirs

    def __init__(self, counts: Iterable[int] = (), every_s: float = 120.0, probe: int = 3,
                 clock: Callable[[], float] = time.perf_counter):
        if probe < 2:
            raise ValueError(f"probe must be >= 2 steps (the first after a switch is not timed), got {probe!r}")
        self.counts, self.every_s, self.probe, self.picks = tuple(counts), float(every_s), int(probe), []
        self.start, self.t_pick, self.clock = None, 0.0, clock

    def before_fit(self):
        self.start = torch.get_num_threads()
        counts = self.counts or {self.start, max(1, self.start // 2), 1}
        self.candidates = sorted(set(counts), reverse=True)
        self._probe_all()

    def _probe_all(self):
        self.queue, self.times = list(self.candidates), {}
        self._switch(self.queue.pop(0))

    def _switch(self, n: int):
        torch.set_num_threads(n)
        self.left, self.fresh, self.t_last = self.probe, True, None

    def before_train(self):
        self.t_last = None  # the time across a validation is not a step's

    def after_batch(self):
        if not self.training:
            return
        now = self.clock()
        if self.t_last is not None and not self.fresh and self.queue is not None:
            self.times.setdefault(torch.get_num_threads(), []).append(now - self.t_last)
        self.fresh, self.t_last = False, now
        if self.queue is None:  # between probes
            if now - self.t_pick >= self.every_s:
                self._probe_all()
                self.t_last = now
            return
        self.left -= 1
        if self.left > 0:
            return
        if self.queue:
            self._switch(self.queue.pop(0))
            self.t_last = now
            return
        best = min(self.times, key=lambda n: statistics.median(self.times[n]))
        torch.set_num_threads(best)
        self.picks.append((int(self.train_iter), best))
        self.queue, self.t_pick = None, now

    def restore(self) -> None:
        """Back to the thread count the fit started with."""
        if self.start is not None:
            torch.set_num_threads(self.start)


def plan_epoch(left_s: float, epochs: int, valid_s: list[float], step_s: float, margin: float = 3.0,
               valid_share: float = 0.02) -> tuple[int, float, int]:
    """The plan of a time budget's next epoch with `left_s` seconds and `epochs` epochs left: (epochs left, its
    training seconds, the steps its loader holds: `margin` x the steps that fit at `step_s`, 0 without a rate).
    The validations before the budget's end (the last comes after it) take at most `valid_share` of the time at
    their measured median, fewer epochs when they would take more; the time left is shared evenly."""
    v = statistics.median(valid_s) if valid_s else 0.0
    if v > 0:
        epochs = max(1, min(epochs, 1 + int(valid_share * left_s / v)))
    share = max(0.0, left_s - (epochs - 1) * v) / epochs
    steps = max(1, math.ceil(margin * share / step_s)) if step_s > 0 else 0
    return epochs, share, steps

