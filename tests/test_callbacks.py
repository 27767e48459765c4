"""Callbacks on tiny synthetic problems: clipping, EMA, divergence guard, bf16 autocast, loss-part logging."""

from __future__ import annotations

import math

import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.progress import ProgressCallback
from fastai.callback.schedule import ParamScheduler, SchedNo
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.optimizer import Adam
from torch import nn

from lab.callbacks import (
    EMA,
    BF16Autocast,
    ClipGrad,
    DivergenceGuard,
    LossPartsLogger,
    LossWatch,
    Snapshot,
    soft_clip_,
)
from lab.losses import L1Loss, parse_loss
from lab.vocab import UnknownName


def _dls(n_train=24, n_valid=8, size=8, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_valid, 3, size, size, generator=g)
    y = 0.5 * x + 0.25  # learnable by one 3x3 conv
    ds = list(zip(x, y))
    return DataLoaders.from_dsets(ds[:n_train], ds[n_train:], bs=bs, device="cpu", num_workers=0)


def _model(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def _learner(cbs=(), loss=None, lr=1e-2, seed=0, **kw):
    learn = Learner(_dls(seed=seed), _model(seed), loss_func=loss or L1Loss(), opt_func=Adam, lr=lr, wd=0.0,
                    cbs=list(cbs), **kw)
    if hasattr(learn, "progress"):
        learn.remove_cb(ProgressCallback)
    return learn


def _fit(learn, n_epoch, lr=None, cbs=None):
    with learn.no_logging():
        learn.fit(n_epoch, lr, cbs=cbs)


class _Probe(Callback):
    """Record something at one event; `fn(learn)` gives the value."""

    def __init__(self, event, fn, order=90, train_only=True):
        self.order, self.fn, self.seen, self.train_only = order, fn, [], train_only
        setattr(self, event, self._record)

    def _record(self):
        if self.training or not self.train_only:
            self.seen.append(self.fn(self.learn))


def _grads(learn):
    return [p.grad.detach().clone() for p in learn.model.parameters()]


def _grad_norm(learn):
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in _grads(learn)])))


def _finite(model):
    return all(torch.isfinite(v).all() for v in model.state_dict().values())


# ---------------------------------------------------------------- ClipGrad


def test_clip_grad_hard_norm_bounds_the_step_gradient():
    clip = ClipGrad(0.01)
    after = _Probe("after_step", _grad_norm)
    learn = _learner([clip, after])
    _fit(learn, 1)
    assert len(after.seen) == 3
    assert max(after.seen) <= 0.01 * (1 + 1e-4)
    assert clip.last_norm > 0.01  # the gradients really were clipped


def test_clip_grad_value_mode_bounds_each_element():
    raw = _Probe("before_step", lambda lrn: max(float(g.abs().max()) for g in _grads(lrn)), order=0)
    after = _Probe("after_step", lambda lrn: max(float(g.abs().max()) for g in _grads(lrn)))
    _fit(_learner([ClipGrad(1e-3, mode="value"), raw, after]), 1)
    assert max(raw.seen) > 1e-3
    assert max(after.seen) <= 1e-3 + 1e-9
    with pytest.raises(UnknownName, match="unknown clip mode 'median'; known clip modes: norm, value"):
        ClipGrad(1.0, mode="median")


def test_soft_clip_is_bounded_monotone_and_near_identity_for_small_gradients():
    c = 0.5
    g = torch.tensor([-1e3, -2.0, -0.5, -1e-4, 0.0, 1e-5, 3e-4, 0.4, 0.5, 7.0, 1e6])
    out = g.clone()
    soft_clip_([out], c)
    assert (out.abs() <= c).all()
    assert (out[:-1] <= out[1:]).all()
    assert (out[1:-2] < out[2:-1]).all()  # strictly increasing away from saturation
    small = g.abs() <= 1e-3 * c
    torch.testing.assert_close(out[small], g[small], rtol=1e-6, atol=0)
    assert float(out[g == 0.5]) == pytest.approx(c * math.tanh(1.0))
    with pytest.raises(ValueError):
        soft_clip_([out], 0.0)


def test_clip_grad_negative_value_soft_clips_in_training():
    c = 1e-3
    raw = _Probe("before_step", _grads, order=0)
    after = _Probe("after_step", _grads)
    _fit(_learner([ClipGrad(-c), raw, after]), 1)
    for r, a in zip(raw.seen, after.seen):
        for gr, ga in zip(r, a):
            torch.testing.assert_close(ga, c * torch.tanh(gr / c))
            assert ga.abs().max() <= c
    assert max(float(g.abs().max()) for g in raw.seen[0]) > 10 * c  # large gradients were present


# ---------------------------------------------------------------- EMA


def _flat(state):
    return torch.cat([v.flatten().float() for v in state.values()])


def test_ema_validates_on_averaged_weights_and_converges_when_training_stops():
    ema = EMA(decay=0.9, apply_at_end=False)
    in_valid = _Probe("before_validate", lambda lrn: _flat(lrn.model.state_dict()), order=95, train_only=False)
    learn = _learner([ema, in_valid])
    _fit(learn, 2)
    raw, avg = _flat(learn.model.state_dict()), _flat(ema.ema_state_dict())
    gap = float((raw - avg).abs().max())
    assert gap > 1e-4  # the average lags the raw weights
    torch.testing.assert_close(in_valid.seen[-1], avg)  # validation ran on the EMA weights ...
    assert not torch.equal(in_valid.seen[-1], raw)  # ... and training continues on the raw ones
    _fit(learn, 10, lr=0.0)  # 30 steps that leave the raw weights unchanged
    torch.testing.assert_close(_flat(learn.model.state_dict()), raw)
    assert float((raw - _flat(ema.ema_state_dict())).abs().max()) <= gap * 0.9**30 * 1.01


def test_ema_applied_at_end_keeps_raw_weights_aside():
    ema = EMA(decay=0.5)
    learn = _learner([ema])
    _fit(learn, 1)
    torch.testing.assert_close(_flat(learn.model.state_dict()), _flat(ema.ema_state_dict()))
    assert not torch.equal(_flat(ema.raw_state), _flat(ema.ema_state_dict()))
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)


# ---------------------------------------------------------------- DivergenceGuard


class _NaNAt:
    """L1 that returns NaN at training call number `at` (0-based)."""

    def __init__(self, at):
        self.at, self.calls, self.inner = at, 0, L1Loss()

    def __call__(self, pred, target):
        loss = self.inner(pred, target)
        if pred.requires_grad:
            self.calls += 1
            if self.calls - 1 == self.at:
                return loss * float("nan")
        return loss


class _LRBlast(Callback):
    """Set lr = 1e6 for the optimizer step at iteration `at` (or every step from `at` on if `persist`)."""

    order = 30  # after the guard's multiplier: the blast hits the optimizer as is

    def __init__(self, at, persist=False):
        self.at, self.persist, self.saved = at, persist, None

    def before_step(self):
        if self.train_iter == self.at or (self.persist and self.train_iter >= self.at):
            self.saved = [h["lr"] for h in self.opt.hypers]
            self.opt.set_hyper("lr", 1e6)

    def after_step(self):
        if self.saved is not None:
            self.opt.set_hyper("lr", self.saved)
            self.saved = None


def test_guard_catches_nan_loss_restores_weights_and_keeps_training():
    guard = DivergenceGuard(snapshot_every=2, max_retries=3)
    parts = LossPartsLogger()
    learn = _learner([guard, parts], loss=_NaNAt(4))
    _fit(learn, 3)
    assert [e["reason"] for e in guard.events] == ["non-finite loss"]
    assert guard.events[0]["iter"] == 4
    assert learn.diverged is False
    assert guard.lr_mult == 0.5
    assert learn.train_iter == 9
    assert _finite(learn.model)
    assert all(math.isfinite(v) for v in learn.recorder.losses)  # the NaN never reached the smooth loss


def test_guard_catches_a_one_off_lr_explosion():
    guard = DivergenceGuard(spike_factor=10, min_history=3, snapshot_every=1)
    learn = _learner([guard, _LRBlast(at=5)])
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    _fit(learn, 4)
    assert len(guard.events) == 1
    assert guard.events[0]["iter"] == 6
    assert "spike" in guard.events[0]["reason"]
    assert not learn.diverged
    assert _finite(learn.model)
    assert max(float(v.abs().max()) for v in learn.model.state_dict().values()) < 10
    assert float(learn.validate()[0]) < 0.5
    assert any(not torch.equal(before[k], v)
                                                    for k, v in learn.model.state_dict().items())


def test_guard_gives_up_after_max_retries_and_marks_diverged():
    guard = DivergenceGuard(spike_factor=10, min_history=3, snapshot_every=1, max_retries=2)
    learn = _learner([guard, _LRBlast(at=5, persist=True)])
    _fit(learn, 10)  # 30 steps planned
    assert learn.diverged is True
    assert len(guard.events) == 3
    assert learn.train_iter < 12
    assert _finite(learn.model)
    assert guard.lr_mult == pytest.approx(0.125)
    raising = DivergenceGuard(spike_factor=10, min_history=3, max_retries=0, on_fail="raise")
    learn = _learner([raising, _LRBlast(at=5, persist=True)])
    with pytest.raises(RuntimeError, match="diverged"):
        _fit(learn, 3)
    assert learn.diverged is True
    with pytest.raises(UnknownName, match="unknown on_fail 'ignore'; known on_fails: stop, raise"):
        DivergenceGuard(on_fail="ignore")


def test_guard_lr_multiplier_survives_param_scheduler_without_compounding():
    guard = DivergenceGuard()
    guard.lr_mult = 0.25
    used = _Probe("before_step", lambda lrn: lrn.opt.hypers[0]["lr"], order=50)
    learn = _learner([guard, used])
    _fit(learn, 2, cbs=[ParamScheduler({"lr": SchedNo(1e-3, 1e-3)})])
    assert used.seen == pytest.approx([2.5e-4] * 6)
    assert learn.recorder.lrs == pytest.approx([1e-3] * 6)  # the scheduler's value is left as it was


def test_loss_watch_flags_non_finite_losses_and_spikes_over_the_median():
    watch = LossWatch(spike_factor=3.0, window=4, min_history=3)
    assert watch.why_bad(1.0) is None
    assert watch.why_bad(100.0) is None, "no spike judged before min_history good losses"
    assert watch.why_bad(float("nan")) == "non-finite loss"
    assert list(watch.history) == [1.0, 100.0], "a bad loss stays out of the history"
    for v in (1.0, 1.0):
        assert watch.why_bad(v) is None
    assert list(watch.history) == [1.0, 100.0, 1.0, 1.0]
    assert watch.why_bad(3.5).startswith("loss spike (3.5 > 3.0 x median 1")
    assert watch.why_bad(2.9) is None
    assert list(watch.history) == [100.0, 1.0, 1.0, 2.9], "the window keeps the last good losses"
    assert LossWatch(spike_factor=None).why_bad(1e9) is None
    with pytest.raises(ValueError, match="spike_factor must be > 1"):
        LossWatch(spike_factor=1.0)


def test_a_snapshot_restores_weights_and_optimizer_state_but_keeps_the_scheduled_lr():
    learn = _learner([])
    learn.create_opt()
    snap = Snapshot(learn)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    _fit(learn, 2)
    assert any(not torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    learn.opt.set_hyper("lr", 0.123)
    snap.restore(learn)
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert all(h["lr"] == 0.123 for h in learn.opt.hypers)


# ---------------------------------------------------------------- bf16 autocast


def test_bf16_autocast_runs_conv_in_bf16_loss_in_fp32_and_trains():
    conv_dtypes, loss_dtypes = set(), set()
    model_first = []

    def loss(pred, target):
        loss_dtypes.add(pred.dtype)
        return L1Loss()(pred, target)

    learn = _learner([BF16Autocast()], loss=loss, lr=3e-3)
    learn.model[0].register_forward_hook(lambda m, i, o: conv_dtypes.add(o.dtype))
    model_first.append(float(learn.validate()[0]))
    _fit(learn, 8)
    assert conv_dtypes == {torch.bfloat16}
    assert loss_dtypes == {torch.float32}
    assert learn.recorder.values[-1][1] < 0.5 * model_first[0]  # the valid loss went down
    assert "forward" not in learn.model.__dict__
    assert not learn.model._forward_pre_hooks, "the autocast hooks are removed after the fit"
    assert not learn.model._forward_hooks
    assert not torch.is_autocast_enabled("cpu")
    conv_dtypes.clear()
    assert learn.model(torch.rand(1, 3, 8, 8)).dtype == torch.float32
    assert conv_dtypes == {torch.float32}


def test_bf16_autocast_does_not_leak_when_forward_raises():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fail = nn.Conv2d(3, 3, 3, padding=1), True

        def forward(self, x):
            if self.fail:
                raise RuntimeError("boom")
            return self.conv(x)

    learn = Learner(_dls(), Boom(), loss_func=L1Loss(), cbs=[BF16Autocast()])
    learn.remove_cb(ProgressCallback) if hasattr(learn, "progress") else None
    with pytest.raises(RuntimeError, match="boom"):
        _fit(learn, 1)
    assert not torch.is_autocast_enabled("cpu")
    learn.model.fail = False
    _fit(learn, 1)  # the hooks left by the failed fit are replaced, not stacked
    assert "forward" not in learn.model.__dict__
    assert not learn.model._forward_pre_hooks
    assert not learn.model._forward_hooks


# ---------------------------------------------------------------- LossPartsLogger


def test_loss_parts_logger_adds_epoch_means_of_each_part():
    combo = parse_loss("l1 + 0.5*mse")
    learn = _learner([LossPartsLogger()], loss=combo, lr=0.0)  # lr 0: fixed weights, so parts are exact means
    _fit(learn, 2)
    names = list(learn.recorder.metric_names)
    assert names == ["epoch", "train_loss", "train_l1", "train_mse", "valid_loss", "time"]
    with torch.no_grad():
        xs, ys = map(torch.stack, zip(*learn.dls.train_ds))
        pred = learn.model(xs)
    for row in learn.recorder.values:
        assert row[1] == pytest.approx(float((pred - ys).abs().mean()), rel=1e-5)
        assert row[2] == pytest.approx(float(((pred - ys) ** 2).mean()), rel=1e-5)
    valid_loss = learn.recorder.values[-1][3]
    _, _, per_item = learn.get_preds(with_loss=True)  # CombinedLoss honours fastai's reduction='none'
    assert per_item.shape == (8,)
    assert float(per_item.mean()) == pytest.approx(valid_loss, rel=1e-5)


def test_guard_and_ema_stay_out_of_the_way_of_validate_and_lr_find():
    guard, ema = DivergenceGuard(), EMA(decay=0.9)
    learn = _learner([guard, ema])
    learn.validate()  # before any fit: no optimizer yet
    _fit(learn, 1)
    learn.diverged = True  # as left by a diverged fit: validating afterwards must not clear it
    learn.validate()
    assert learn.diverged is True
    before = _flat(learn.model.state_dict())
    with learn.no_logging():
        learn.lr_find(num_it=5, show_plot=False)
    torch.testing.assert_close(_flat(learn.model.state_dict()), before)  # lr_find restored, EMA did not interfere
    assert guard.events == []
    assert guard.lr_mult == 1.0


def test_data_epoch_offsets_the_loader_epoch_and_rejects_bad_offsets():
    from lab.callbacks import DataEpoch
    from lab.data import dataloaders

    dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=4, valid="builtin:chelsea",
                      valid_max_size=32)
    seen = []

    class Spy(Callback):
        order = DataEpoch.order + 1

        def before_train(self):
            seen.append(self.learn.dls.train.epoch)

    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
    learn = Learner(dls, net, loss_func=nn.L1Loss(), cbs=[DataEpoch(5), Spy()])
    with learn.no_bar(), learn.no_logging():
        learn.fit(2)
    assert seen == [5, 6]
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="offset"):
            DataEpoch(bad)
