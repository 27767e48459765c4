"""Recording a training run into its run directory, one small callback per job, and resuming from what they wrote.

- `RecordHistory`: each training epoch's losses and metrics into the history, and a heartbeat during epochs.
- `SaveCheckpoints`: `last` (weights, optimizer state, epoch, EMA, critic and switching state: all `lab resume`
  needs) every epoch, and `best` by a monitored metric.
- `SaveSamples`: an LR | SR | HR strip of the first validation image each epoch.
`record_run(run, phase)` gives the three. A second training phase of the same run (the adversarial one) passes
`phase='gan'`: its records carry the phase and its files are its own, so the first phase's stay intact. Only
rank 0 writes in a distributed run. `load_resume_state` puts a `last` checkpoint back into a learner.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.torch_core import rank_distrib
from fastcore.foundation import L
from torch import nn
from torch.nn import functional as F

from lab.callbacks import EMA
from lab.models import checkpoint_payload, read_checkpoint
from lab.runs import CHECKPOINT_DIR, Run, checkpoint_name


def plain_state(obj: Any) -> Any:
    """An optimizer state dict as plain containers (fastai's L, numpy scalars -> list, float), so the checkpoint
    loads with `weights_only=True`."""
    if isinstance(obj, dict):
        return {k: plain_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or type(obj).__name__ == "L":
        return [plain_state(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def unwrap_model(model: nn.Module) -> nn.Module:
    """The restoration network inside a learner's model: DDP's `.module`, a GAN module's `.generator`."""
    while True:
        inner = next((m for m in (getattr(model, a, None) for a in ("module", "generator"))
                      if isinstance(m, nn.Module)), None)
        if inner is None:
            return model
        model = inner


class RunCallback(Callback):
    """Base of the recording callbacks: the run, the phase, and 'was this a training epoch' (validate() and
    get_preds() fire after_epoch too; only training epochs are recorded)."""

    run_valid = False

    def __init__(self, run: Run, phase: str = ""):
        self.record, self.phase, self.trained = run, phase, False

    def before_fit(self):
        self.run = not hasattr(self.learn, "lr_finder") and rank_distrib() == 0

    def before_train(self):
        self.trained = True

    def _training_epoch_ended(self) -> bool:
        was, self.trained = self.trained, False
        return was


def steps_done(learn: Any) -> int | None:
    """Optimizer steps the run has taken at the end of the current epoch (both phases counted), from the data
    loader's budget; None when the loaders carry none."""
    budget = getattr(learn.dls, "budget", None)
    if budget is None:
        return None
    data_epoch = int(learn.epoch) + getattr(getattr(learn, "data_epoch", None), "offset", 0)
    return budget.steps_before(data_epoch) + budget.steps_in(data_epoch)


class RecordHistory(RunCallback):
    """Append each training epoch's losses, metrics, epoch, phase, lr and time to the run's history: `elapsed_s`
    since the fit began (validations and recording included) and `train_s` spent in training epochs alone (what
    a quality-per-minute curve plots), both counted over every attempt of a resumed run; beat the heart at least every `beat_s` seconds during an epoch."""

    order = 60  # after fastai's Recorder has logged the epoch's values

    def __init__(self, run: Run, phase: str = "", beat_s: float = 30.0):
        super().__init__(run, phase)
        self.beat_s = beat_s

    def before_fit(self):
        super().before_fit()
        self.t0 = self.last_beat = time.perf_counter()
        self.train_s = 0.0
        # a resumed fit goes on from the attempts before it (the history was cut back to its checkpoint)
        kept = [h for h in self.record.history if h.get("phase", "") == self.phase]
        self.before_s = float(kept[-1].get("elapsed_s", 0.0)) if kept else 0.0
        self.train_before_s = float(kept[-1].get("train_s", 0.0)) if kept else 0.0

    def before_train(self):
        super().before_train()
        self.t_train = time.perf_counter()

    def after_train(self):
        self.train_s += time.perf_counter() - self.t_train

    def after_batch(self):
        if time.perf_counter() - self.last_beat > self.beat_s:
            self.record.heartbeat()
            self.last_beat = time.perf_counter()

    def after_epoch(self):
        if not self._training_epoch_ended():
            return
        names = [str(n) for n in self.recorder.metric_names]
        rec = {n: (float(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v)
               for n, v in zip(names, self.recorder.log)}
        rec["epoch"] = int(self.epoch)
        step = steps_done(self.learn)
        if step is not None:
            rec["step"] = step
        if self.phase:
            rec["phase"] = self.phase
        rec["lr"] = float(self.opt.hypers[-1]["lr"])
        rec["elapsed_s"] = round(self.before_s + time.perf_counter() - self.t0, 2)
        rec["train_s"] = round(self.train_before_s + self.train_s, 2)
        self.record.log_epoch(rec)
        self.last_beat = time.perf_counter()


class SaveCheckpoints(RunCallback):
    """Save `last` every `every` training epochs and after the fit's last epoch (weights, optimizer state, epoch
    and step, plus the EMA weights, the critic and the callbacks' `resume_state()` where present) and `best` when
    `monitor` improves (with EMA: the averaged weights, the ones validated). A resumed run keeps beating the best
    value in its history."""

    order = 61

    def __init__(self, run: Run, phase: str = "", monitor: str = "psnr_y", higher_is_better: bool = True,
                 every: int = 1):
        super().__init__(run, phase)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r}: expected an int >= 1 (epochs between resume checkpoints)")
        self.monitor, self.higher, self.best, self.every = monitor, higher_is_better, None, every

    def before_fit(self):
        super().before_fit()
        names = [str(n) for n in self.recorder.metric_names] if hasattr(self.learn, "recorder") else []
        if self.run and names and self.monitor not in names:
            raise ValueError(f"monitor {self.monitor!r} is not a validation column; accepted: "
                             f"{', '.join(n for n in names if n not in ('epoch', 'train_loss', 'time'))}")
        if self.best is None:
            seen = [h.get(self.monitor) for h in self.record.history if h.get("phase", "") == self.phase]
            seen = [v for v in seen if isinstance(v, (int, float)) and math.isfinite(v)]
            self.best = (max if self.higher else min)(seen) if seen else None

    def after_epoch(self):
        if not self._training_epoch_ended():
            return
        net = unwrap_model(self.model)
        if (self.epoch + 1) % self.every == 0 or self.epoch == self.n_epoch - 1:
            self._save_last(net)
        self._save_best(net)

    def _ema_state(self) -> dict[str, torch.Tensor] | None:
        ema = getattr(self.learn, "ema", None)
        return ema.ema_state_dict() if isinstance(ema, EMA) and ema.ema_state is not None else None

    def _save_last(self, net: nn.Module) -> None:
        ema_state = self._ema_state()
        extra: dict[str, Any] = {} if ema_state is None else {"ema_state": ema_state}
        critic = getattr(self.model, "critic", None)
        if isinstance(critic, nn.Module):  # an adversarial phase resumes with its discriminator too
            extra["critic_state"] = critic.state_dict()
        cb_state = {type(cb).__name__: cb.resume_state() for cb in self.learn.cbs if hasattr(cb, "resume_state")}
        if cb_state:
            extra["cb_state"] = cb_state
        self.record.save_checkpoint(checkpoint_payload(net, epoch=int(self.epoch), step=steps_done(self.learn),
                                                       opt_state=plain_state(self.opt.state_dict()), **extra),
                                    "last", self.phase)

    def _save_best(self, net: nn.Module) -> None:
        ema_state = self._ema_state()
        names = [str(n) for n in self.recorder.metric_names]
        value = dict(zip(names, self.recorder.log)).get(self.monitor)
        value = float(value) if isinstance(value, (int, float)) or hasattr(value, "item") else None
        if value is not None and math.isfinite(value):
            better = self.best is None or (value > self.best if self.higher else value < self.best)
            if better:
                self.best = value
                self.record.save_checkpoint(checkpoint_payload(net, state_dict=ema_state, epoch=int(self.epoch),
                                                               **{self.monitor: value}), "best", self.phase)


class SaveSamples(RunCallback):
    """Save an LR (nearest-upscaled) | SR | HR strip of a centre crop (`sample_size` HR px) of the first validation
    image after each training epoch."""

    order = 62

    def __init__(self, run: Run, phase: str = "", sample_size: int = 96):
        super().__init__(run, phase)
        self.sample_size = sample_size

    def after_epoch(self):
        if not self._training_epoch_ended():
            return
        ds = getattr(self.dls.valid, "dataset", None)
        if ds is None or len(ds) == 0:
            return
        net = unwrap_model(self.model)
        lr, hr = ds[0]
        s = hr.shape[-1] // lr.shape[-1]
        c = max(1, self.sample_size // s)
        y0, x0 = (lr.shape[-2] - min(c, lr.shape[-2])) // 2, (lr.shape[-1] - min(c, lr.shape[-1])) // 2
        lr_c = lr[None, :, y0:y0 + c, x0:x0 + c]
        hr_c = hr[None, :, y0 * s:(y0 + c) * s, x0 * s:(x0 + c) * s]
        was = net.training
        net.eval()
        with torch.no_grad():
            sr = net(lr_c.to(next(net.parameters()).device)).float().cpu().clamp(0, 1)
        net.train(was)
        up = F.interpolate(lr_c, scale_factor=s, mode="nearest")
        strip = torch.cat([up, sr, hr_c], dim=-1)[0]
        if strip.shape[0] == 1:
            strip = strip.expand(3, -1, -1)
        self.record.save_sample(strip, int(self.epoch), self.phase)


def record_run(run: Run, phase: str = "", monitor: str = "psnr_y", higher_is_better: bool | None = None,
               sample_size: int = 96, beat_s: float = 30.0, save_every: int = 1) -> list[RunCallback]:
    """The recording callbacks of one training phase: history + heartbeat, checkpoints (the resume one every
    `save_every` epochs; the best by `monitor`, higher better unless it is a loss), samples."""
    if higher_is_better is None:
        higher_is_better = "loss" not in monitor
    return [RecordHistory(run, phase, beat_s), SaveCheckpoints(run, phase, monitor, higher_is_better, save_every),
            SaveSamples(run, phase, sample_size)]


def load_resume_state(learn: Any, checkpoint: str | Path) -> int:
    """Load a `last` checkpoint written by SaveCheckpoints into `learn` (weights, optimizer state, EMA; for a GAN
    learner's `gan_last.pth` also the critic and the switching state); returns the epoch to start from, for
    `fit(..., start_epoch=...)`. The schedule position follows from the epoch."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {str(path)!r} does not exist")
    payload = read_checkpoint(path)
    if "epoch" not in payload or "opt_state" not in payload:
        raise ValueError(f"{str(path)!r} has no epoch/optimizer state (keys {sorted(payload)}): only a run's "
                         f"{CHECKPOINT_DIR}/{checkpoint_name('last')} can be resumed; use init_from to fine-tune "
                         "from other weights")
    critic = getattr(learn.model, "critic", None)
    has_critic = isinstance(critic, nn.Module)
    if ("critic_state" in payload) != has_critic:
        raise ValueError(f"{str(path)!r} {'holds' if 'critic_state' in payload else 'has no'} discriminator "
                         f"weights but the learner {'has one' if has_critic else 'has none'}: resume an "
                         "adversarial phase from its 'gan' last checkpoint with a GAN learner, a plain phase from its "
                         "last one")
    net = unwrap_model(learn.model)
    net.load_state_dict(payload["state_dict"])
    if learn.opt is None:
        learn.create_opt()
    learn.opt.load_state_dict({**payload["opt_state"], "hypers": L(payload["opt_state"]["hypers"])})
    for p, *_ in learn.opt.all_params():  # the state was saved from wherever the model was; follow the weights
        learn.opt.state[p] = {k: v.to(p.device) if isinstance(v, torch.Tensor) else v
                              for k, v in learn.opt.state[p].items()}
    ema = getattr(learn, "ema", None)
    if isinstance(ema, EMA) and "ema_state" in payload:
        device = next(net.parameters()).device
        ema.ema_state = {k: v.to(device) for k, v in payload["ema_state"].items()}
    if has_critic:
        critic.load_state_dict(payload["critic_state"])
    saved = payload.get("cb_state", {})
    for cb in learn.cbs:  # e.g. which network trains next, how far the critic stepper had got
        if hasattr(cb, "restore_resume_state") and type(cb).__name__ in saved:
            cb.restore_resume_state(saved[type(cb).__name__])
    return int(payload["epoch"]) + 1
