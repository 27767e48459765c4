"""Adversarial training (SRGAN / ESRGAN style) as fastai pieces on an unchanged `fastai.vision.gan.GANLearner`.

- Losses: `critic_loss` / `generator_adv_loss` for 'vanilla', 'lsgan', 'hinge' and 'ragan' on logits of any shape
  ((B,) image-level or (B, 1, h, w) PatchGAN maps); `GeneratorLoss` = content + adv_weight x adversarial term.
- `ConditionalCritic` + `FeedCondition`: a discriminator that also sees the LR input.
- `CriticStepper`: the adaptive switcher that trains D only while it needs to (see its docstring for the rule).
- `TrainActiveOnly`, `GANPartsLogger`, `GANBF16Autocast`: small callbacks that make fastai's
  GANTrainer step only the network being trained, log loss parts, and autocast both networks.
- `gan_learner` assembles them; `pretrain_critic` is NoGAN's critic-only phase.

NoGAN's first phase (generator pretraining) is `lab.learner.restoration_learner` on the same generator.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from fastai.callback.core import Callback, CancelFitException, CancelValidException
from fastai.learner import Recorder
from fastai.vision.gan import FixedGANSwitcher, GANLearner, GANTrainer
from torch import nn

from lab import vocab
from lab.callbacks import BF16Autocast, DataEpoch, DeviceDegrade, MoreValidation
from lab.learner import amp_callbacks, default_metrics, make_loss, make_opt
from lab.models import create
from lab.recording import RunCallback
from lab.registry import Registry

ADV_LOSSES = vocab.ADV_LOSSES
# Critic loss of the best discriminator that ignores its input (a constant logit): "D is at chance" level.
CHANCE_LOSS = {"vanilla": math.log(2), "lsgan": 0.25, "hinge": 1.0, "ragan": math.log(2)}


def _check_kind(kind: str) -> str:
    return vocab.choose("adversarial loss", kind, ADV_LOSSES, "adversarial losses")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def critic_loss(kind: str, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: the mean of its real and fake terms (lower = D tells them apart better).

    vanilla: BCE(real, 1), BCE(fake, 0); lsgan: (real - 1)^2, fake^2 (Mao et al. 2017); hinge: relu(1 - real),
    relu(1 + fake); ragan (ESRGAN, https://arxiv.org/abs/1809.00219, eq. 1-2): BCE(real - mean(fake), 1),
    BCE(fake - mean(real), 0), the means taken over all logits of the batch.
    Shape: logits (B,) or (B, 1, h, w), any shape each -> scalar.
    """
    _check_kind(kind)
    if kind == "vanilla":
        real, fake = _bce(real_pred, 1.0), _bce(fake_pred, 0.0)
    elif kind == "lsgan":
        real, fake = (real_pred - 1).pow(2).mean(), fake_pred.pow(2).mean()
    elif kind == "hinge":
        real, fake = F.relu(1 - real_pred).mean(), F.relu(1 + fake_pred).mean()
    else:
        real, fake = _bce(real_pred - fake_pred.mean(), 1.0), _bce(fake_pred - real_pred.mean(), 0.0)
    return (real + fake) / 2


def generator_adv_loss(kind: str, fake_pred: torch.Tensor, real_pred: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's adversarial term (lower = D is fooled more); 'ragan' also needs D's logits on real images.

    vanilla: BCE(fake, 1) (non-saturating); lsgan: (fake - 1)^2; hinge: -fake; ragan: the mean of
    BCE(real - mean(fake), 0) and BCE(fake - mean(real), 1).
    Shape: logits (B,) or (B, 1, h, w) -> scalar.
    """
    _check_kind(kind)
    if kind == "vanilla":
        return _bce(fake_pred, 1.0)
    if kind == "lsgan":
        return (fake_pred - 1).pow(2).mean()
    if kind == "hinge":
        return -fake_pred.mean()
    if real_pred is None:
        raise ValueError("the 'ragan' generator loss needs real_pred, the critic's logits on the real images")
    return (_bce(real_pred - fake_pred.mean(), 0.0) + _bce(fake_pred - real_pred.mean(), 1.0)) / 2


class CriticLoss(nn.Module):
    """`crit_loss_func` for GANLearner: `(real_pred, fake_pred) -> critic_loss(kind, ...)`."""

    def __init__(self, kind: str = "vanilla"):
        super().__init__()
        self.kind = _check_kind(kind)

    def forward(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        return critic_loss(self.kind, real_pred, fake_pred)


class GeneratorLoss(nn.Module):
    """`gen_loss_func` for GANLearner: content(output, target) + adv_weight x generator_adv_loss(kind, ...).

    For 'ragan' the critic's logits on the real images are computed here from `target` (no gradient), so the
    module keeps a reference to `critic` (not registered: its weights belong to the GAN module).
    `last_parts` holds the last call's unweighted 'content' and 'adv' values (detached tensors).
    """

    def __init__(self, content: str | Callable = "l1", adv_weight: float = 1e-3, kind: str = "vanilla",
                 critic: Callable | None = None):
        super().__init__()
        if not adv_weight >= 0:
            raise ValueError(f"adv_weight must be >= 0, got {adv_weight!r}")
        self.kind, self.adv_weight = _check_kind(kind), float(adv_weight)
        if kind == "ragan" and critic is None:
            raise ValueError("gan_loss='ragan' needs the critic: pass critic=<the discriminator>")
        self.content = make_loss(content)
        self._critic = (critic,)  # a tuple keeps nn.Module from registering the critic as a submodule
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(self, fake_pred: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        content = self.content(output, target)
        real_pred = None
        if self.kind == "ragan":
            with torch.no_grad():
                real_pred = self._critic[0](target)
        adv = generator_adv_loss(self.kind, fake_pred, real_pred)
        self.last_parts = {"content": content.detach(), "adv": adv.detach()}
        return content + self.adv_weight * adv


class ConditionalCritic(nn.Module):
    """Calls a conditional discriminator as `disc(x, cond)` with the `cond` set for the current batch.

    fastai's GANModule and GANLoss call the critic with the image only; `FeedCondition` sets `cond` (the LR input)
    before every batch and clears it after.
    Shape: (B, C, H, W) -> the discriminator's logits.
    """

    def __init__(self, disc: nn.Module):
        super().__init__()
        if not getattr(disc, "cond_ch", 0):
            raise ValueError(f"{type(disc).__name__} is not conditional (cond_ch={getattr(disc, 'cond_ch', None)}): "
                             "build it with cond_ch=<LR channels>")
        self.disc, self.cond = disc, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cond is None:
            raise ValueError("ConditionalCritic has no condition for this batch: add the FeedCondition callback "
                             "(gan_learner(conditional=True) does), or set .cond to the LR batch")
        return self.disc(x, self.cond)


class FeedCondition(Callback):
    """Give the `ConditionalCritic` the batch's LR input before each batch (training and validation)."""

    order = GANTrainer.order + 1  # after GANTrainer swaps (LR, HR) to (HR, LR) for critic steps

    def before_batch(self):
        lr = self.learn.xb[0] if self.learn.gan_trainer.gen_mode else self.learn.yb[0]
        self.learn.model.critic.cond = lr

    def after_batch(self):
        self.learn.model.critic.cond = None


class _ResumableState:
    """Callback state that `lab.recording.load_resume_state` hands back (`restore_resume_state`); the callback
    takes it when the next fit starts, since its `before_fit` would otherwise reset it."""

    def restore_resume_state(self, state: dict[str, Any]) -> None:
        """Take a `resume_state()` read from a checkpoint; applied when the next fit starts."""
        self._restored = dict(state)

    def _take_restored(self, key: str, default: Any) -> Any:
        return self.__dict__.get("_restored", {}).pop(key, default)


class CriticStepper(_ResumableState, Callback):
    """Adaptive switcher: D trains while it needs to, within bounds so neither network starves.

    After every training batch (validation never switches), with k the number of consecutive steps so far in
    the current phase:
    - critic phase: D hands over to G when k >= `max_crit`, or when k >= `min_crit` and the critic loss of the
      step just taken (`learn.loss` for that one batch, not smoothed) is below `threshold`;
    - generator phase: G trains exactly `n_gen` consecutive steps, then D's phase begins.
    k restarts at each switch and at each fit (GANTrainer starts every fit in critic mode); with TrainActiveOnly
    (gan_learner adds it) the phase and k carry across epochs. `crit_steps`/`gen_steps` count this fit's steps.
    fastai's AdaptiveGANSwitcher(critic_thresh=threshold) is the unbounded case (min_crit=1, no max_crit, n_gen=1).
    """

    order, run_valid = GANTrainer.order + 1, False  # after GANTrainer has recorded the batch

    def __init__(self, threshold: float = CHANCE_LOSS["vanilla"], min_crit: int = 1, max_crit: int = 5,
                 n_gen: int = 1):
        if not 1 <= min_crit <= max_crit or n_gen < 1:
            raise ValueError(f"min_crit={min_crit!r}, max_crit={max_crit!r}, n_gen={n_gen!r}: expected "
                             "1 <= min_crit <= max_crit and n_gen >= 1")
        self.threshold, self.min_crit, self.max_crit, self.n_gen = float(threshold), min_crit, max_crit, n_gen

    def before_fit(self):
        self.crit_steps, self.gen_steps = 0, 0
        self.k = self._take_restored("k", 0)  # a resumed fit goes on counting the current phase

    def resume_state(self) -> dict[str, int]:
        """What a resumed fit needs to take the next step an uninterrupted one would (SaveCheckpoints saves it)."""
        return {"k": int(self.k)}

    def after_batch(self):
        if not self.training:
            return
        trainer = self.learn.gan_trainer
        self.k += 1
        if trainer.gen_mode:
            self.gen_steps += 1
            done = self.k >= self.n_gen
        else:
            self.crit_steps += 1
            good_enough = float(self.learn.loss.detach()) < self.threshold
            done = self.k >= self.max_crit or (self.k >= self.min_crit and good_enough)
        if done:
            trainer.switch()
            self.k = 0


class TrainActiveOnly(_ResumableState, Callback):
    """Make fastai's GANTrainer train, and evaluate, only what it means to.

    - The frozen network gets no optimizer step: fastai's optimizers zero gradients instead of dropping them, so
      Adam's momentum and weight decay would keep moving the network that is not being trained.
    - Validation runs with the whole GAN in eval mode (GANTrainer puts the generator back in train mode there).
    - Validation does not change which network trains next: GANTrainer switches to the generator for validation
      and would resume training with it; each training epoch resumes the mode the previous one ended in, with the
      loss network in eval mode again (TrainEvalCallback sets all to train).
    """

    order = GANTrainer.order + 1

    def before_fit(self):
        self.resume = self._take_restored("gen_mode", None)  # a resumed fit: the saved mode

    def resume_state(self) -> dict[str, bool]:
        """Which network the next training epoch starts with (SaveCheckpoints saves it for `lab resume`)."""
        return {"gen_mode": bool(self.learn.gan_trainer.gen_mode if self.resume is None else self.resume)}

    def before_train(self):
        trainer = self.learn.gan_trainer
        trainer.switch(trainer.gen_mode if self.resume is None else self.resume)

    def after_train(self):
        self.resume = self.learn.gan_trainer.gen_mode

    def before_validate(self):
        self.learn.model.eval()

    def before_step(self):
        for p in self.learn.model.parameters():
            if not p.requires_grad:
                p.grad = None


class GANPartsLogger(Callback):
    """Per-epoch training columns: `train_content`/`train_adv` (unweighted means over generator steps),
    `train_crit` (mean critic loss over critic steps) and `train_crit_steps`/`train_gen_steps` (step counts).

    fastai's `gen_loss`/`crit_loss` columns are validation values (`crit_loss` is the last training critic batch);
    these are the training epoch's. A mean over no steps is NaN.
    """

    order = Recorder.order + 5  # after the Recorder builds its names and logs train values, before loggers print
    names = ("train_content", "train_adv", "train_crit", "train_crit_steps", "train_gen_steps")

    def before_fit(self):
        mn = list(self.recorder.metric_names)
        at = mn.index("valid_loss") if "valid_loss" in mn else (len(mn) - 1 if mn[-1] == "time" else len(mn))
        self.recorder.metric_names = type(self.recorder.metric_names)(mn[:at] + list(self.names) + mn[at:])

    def before_train(self):
        self.sums, self.n_crit, self.n_gen = {"content": 0.0, "adv": 0.0, "crit": 0.0}, 0, 0

    def after_loss(self):
        if not self.training or not len(self.learn.yb):
            return
        if self.learn.gan_trainer.gen_mode:
            for k, v in getattr(self.learn.loss_func.gen_loss_func, "last_parts", {}).items():
                self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.n_gen += 1
        else:
            self.sums["crit"] += float(self.learn.loss.detach())
            self.n_crit += 1

    def after_train(self):
        def mean(k, n):
            return self.sums[k] / n if n else float("nan")

        self.recorder.log += [mean("content", self.n_gen), mean("adv", self.n_gen), mean("crit", self.n_crit),
                              self.n_crit, self.n_gen]


class GANBF16Autocast(BF16Autocast):
    """`lab.callbacks.BF16Autocast` for a GANLearner: autocasts the generator and the critic themselves, since
    fastai's GANLoss calls them directly (outside the GAN module's forward); losses stay float32."""

    def networks(self) -> list[nn.Module]:
        """The generator and the critic."""
        return [self.learn.model.generator, self.learn.model.critic]


SWITCHERS = Registry("switcher", {"adaptive": CriticStepper, "fixed": FixedGANSwitcher})


def make_switcher(name: str = "adaptive", **kwargs: Any) -> Callback:
    """'fixed': fastai's FixedGANSwitcher(n_crit=1, n_gen=1); 'adaptive': CriticStepper(threshold, min_crit,
    max_crit, n_gen)."""
    bad, accepted = SWITCHERS.check_kwargs(name, kwargs)
    if bad:
        raise ValueError(f"switcher {name!r} does not take {bad}; it takes {accepted}")
    return SWITCHERS[name](**kwargs)


def _all_params(model: nn.Module) -> list:
    # fastai's default splitter keeps only parameters with requires_grad, so an optimizer created after a fit
    # that ended with one network frozen would never train it again.
    return list(model.parameters())


def _build_critic(disc: str | nn.Module, disc_kwargs: dict | None, conditional: bool, ch: int) -> nn.Module:
    if isinstance(disc, nn.Module):
        if disc_kwargs:
            raise ValueError(f"disc_kwargs={disc_kwargs!r} given with a discriminator module: pass a registered "
                             "name (e.g. 'disc_vgg') to build one from kwargs")
        d = disc
    else:
        kw = {"in_ch": ch, **({"cond_ch": ch} if conditional else {}), **(disc_kwargs or {})}
        d = create(disc, **kw)
    cond_ch = getattr(d, "cond_ch", 0)
    if conditional:
        return ConditionalCritic(d)
    if cond_ch:
        raise ValueError(f"the discriminator is conditional (cond_ch={cond_ch}) but conditional=False: "
                         "pass conditional=True or build it with cond_ch=0")
    return d


def gan_learner(dls: Any, generator: nn.Module, disc: str | nn.Module = "disc_vgg", disc_kwargs: dict | None = None,
                gan_loss: str = "vanilla", content_loss: str | Callable = "l1", adv_weight: float = 1e-3,
                conditional: bool = False, switcher: str | Callback = "adaptive", switcher_kwargs: dict | None = None,
                opt: str = "adam", lr: float = 1e-4, wd: float = 0.0, betas: Sequence[float] = (0.9, 0.999),
                metrics: list | None = None, amp: str | None = None, cbs: list | None = None, path: str | None = None,
                scale: int | None = None, data_offset: int = 0) -> GANLearner:
    """A fastai GANLearner for (LR, HR) data: G loss = content + adv_weight x adversarial; PSNR/SSIM on G's output.

    `disc`: a registered discriminator name (built with in_ch, and cond_ch=in_ch when `conditional`, from the data's
    channels; `disc_kwargs` override) or a module. `switcher`: 'adaptive' (CriticStepper; its threshold defaults to
    CHANCE_LOSS[gan_loss]), 'fixed' (FixedGANSwitcher), or a switcher callback. `learn.model.generator` is
    `generator`; `learn.model.critic` is the discriminator (wrapped in ConditionalCritic when conditional).
    Record runs with `lab.recording.record_run(run, phase="gan")`: it checkpoints and samples the generator, and
    its last checkpoint also holds the critic and the switching state, so `lab.recording.load_resume_state` continues the phase
    exactly. Training epoch e draws the loader's data epoch `data_offset + e` (after a pretraining phase of n
    epochs on the same loader, pass n so the patches are new).
    """
    _check_kind(gan_loss)
    cbs = list(cbs or [])
    for cb in cbs:
        if type(cb) is BF16Autocast:  # the GAN one (a subclass) autocasts both networks
            raise ValueError("BF16Autocast in cbs would autocast only part of a GAN's forward: pass amp='bf16'")
    scale = scale or getattr(dls, "scale", None) or getattr(generator, "scale", 1)
    ch = {"rgb": 3, "y": 1}.get(getattr(dls, "channels", "rgb"), 3)
    critic = _build_critic(disc, disc_kwargs, conditional, ch)
    if isinstance(switcher, str):
        kw = dict(switcher_kwargs or {})
        if switcher == "adaptive":
            kw.setdefault("threshold", CHANCE_LOSS[gan_loss])
        switcher = make_switcher(switcher, **kw)
    elif switcher_kwargs:
        raise ValueError(f"switcher_kwargs={switcher_kwargs!r} given with a switcher callback: pass "
                         f"switcher as one of {SWITCHERS.names()} to build one from kwargs")
    amp_cbs = [GANBF16Autocast(cb.device_type) if isinstance(cb, BF16Autocast) else cb
               for cb in amp_callbacks(amp, getattr(dls, "device", None))]
    cbs = [DataEpoch(data_offset), DeviceDegrade(), *cbs, *amp_cbs, TrainActiveOnly(), GANPartsLogger(),
           *([FeedCondition()] if conditional else []), *([MoreValidation()] if getattr(dls, "extra_valid", None)
                                                          else [])]
    gen_loss = GeneratorLoss(content_loss, adv_weight, gan_loss, critic=critic)
    return GANLearner(dls, generator, critic, gen_loss, CriticLoss(gan_loss), switcher=switcher, cbs=cbs,
                      metrics=default_metrics(scale) if metrics is None else metrics, opt_func=make_opt(opt, betas),
                      lr=lr, wd=wd, splitter=_all_params, path=path or ".", model_dir="checkpoints")


class _CriticOnly(Callback):
    """Keep a GANLearner in critic mode, skip validation, stop after `n` training batches."""

    order = 100  # after every switcher and logger has seen the batch

    def __init__(self, n: int):
        self.n, self.count = n, 0

    def before_epoch(self):
        self.learn.gan_trainer.switch(False)

    def before_validate(self):
        raise CancelValidException()

    def after_batch(self):
        if not self.training:
            return
        self.count += 1
        if self.count >= self.n:
            raise CancelFitException()
        if self.learn.gan_trainer.gen_mode:
            self.learn.gan_trainer.switch(False)


def pretrain_critic(learn: GANLearner, n_batches: int, lr: float | None = None) -> int:
    """NoGAN's second phase: train only the critic for `n_batches` batches against the (frozen) generator's
    outputs, with no validation and no run records; returns the number of critic steps taken."""
    if not isinstance(n_batches, int) or n_batches < 1:
        raise ValueError(f"n_batches must be an int >= 1, got {n_batches!r}")
    stop = _CriticOnly(n_batches)
    recorders = [cb for cb in learn.cbs if isinstance(cb, RunCallback)]
    with learn.removed_cbs(recorders):
        learn.fit(math.ceil(n_batches / len(learn.dls.train)), lr, cbs=[stop])
    learn.gan_trainer.switch(gen_mode=True)  # leave the generator trainable, as a normal fit does
    return stop.count


__all__ = ["ADV_LOSSES", "CHANCE_LOSS", "SWITCHERS", "ConditionalCritic", "CriticLoss", "CriticStepper",
           "FeedCondition", "GANBF16Autocast", "GANPartsLogger", "GeneratorLoss",
           "TrainActiveOnly", "critic_loss", "gan_learner", "generator_adv_loss", "make_switcher",
           "pretrain_critic"]
