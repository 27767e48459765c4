"""Distributed: a real 2-process CPU DDP run (gloo) on the lab's data and model, the 1-process path, bad arguments."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
import torch
from fastai.callback.core import Callback
from fastai.distributed import DistributedTrainer
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from lab import distributed as D
from lab.data import dataloaders
from lab.learner import restoration_learner
from lab.models import create

EPOCHS = 2


def _setup():
    """Real (LR, HR) loaders with 16 patches an epoch (4 batches of 4), a tiny EDSR and its initial weights."""
    dls = dataloaders("builtin:astronaut", scale=2, patch_size=12, batch_size=4, repeat=16, valid="builtin:chelsea",
                      valid_max_size=48)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create("edsr_baseline", scale=2, num_block=1, num_feat=8)
    return dls, model, {k: v.clone() for k, v in model.state_dict().items()}


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.contiguous().numpy().tobytes()).hexdigest()


class _Seen(Callback):
    """Records which training samples (by HR-patch digest, per dataset epoch) this process stepped on."""

    def before_fit(self):
        self.samples, self.iters, self.wrapped = [], 0, False

    def before_batch(self):
        if self.training:
            self.iters += 1
            self.wrapped |= any(isinstance(cb, DistributedTrainer) for cb in self.learn.cbs)
            self.samples += [(self.dl.dataset.epoch, _digest(y)) for y in self.yb[0]]


def _recording_fit(out_dir):
    """A `fit(learn)` that trains EPOCHS epochs and saves what this rank saw and ended with to out_dir/rank<r>.pt."""

    def fit(learn):
        seen = _Seen()
        with learn.no_bar(), learn.no_logging():
            learn.fit(EPOCHS, cbs=[seen])
        torch.save(dict(rank=D.rank(), world=D.world_size(), pid=os.getpid(), threads=torch.get_num_threads(),
                        samples=seen.samples, iters=seen.iters, wrapped=seen.wrapped,
                        state={k: v.detach().clone() for k, v in learn.model.state_dict().items()}),
                   out_dir / f"rank{D.rank()}.pt")

    return fit


def _epoch_samples(ds, epoch: int) -> set[str]:
    ds.set_epoch(epoch)
    return {_digest(ds[i][1]) for i in range(len(ds))}


@pytest.mark.slow
def test_two_cpu_processes_split_batches_and_agree(tmp_path):
    dls, model, init = _setup()

    def make_learner():
        rng = random.Random(D.rank())  # ranks shuffle differently: only rank 0's broadcast order aligns them
        dls.train.shuffle_fn = lambda idxs: rng.sample(idxs, len(idxs))
        return restoration_learner(dls, model, loss="l1", lr=1e-3)

    res = D.fit_distributed(make_learner, _recording_fit(tmp_path), num_processes=2, cpu=True)
    sd = res["state_dict"]
    assert res["diverged"] is False
    assert res["guard_events"] == []
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world"], r1["world"]) == (0, 1, 2, 2)
    assert len({r0["pid"], r1["pid"], os.getpid()}) == 3
    assert r0["wrapped"]
    assert r1["wrapped"]
    assert r0["threads"] == r1["threads"] == D.threads_per_process(2)
    # each rank steps on half the batches: together, every sample of each epoch exactly once
    assert r0["iters"] == r1["iters"] == EPOCHS * len(dls.train) // 2
    for epoch in sorted({e for e, _ in r0["samples"] + r1["samples"]}):
        s0 = [h for e, h in r0["samples"] if e == epoch]
        s1 = [h for e, h in r1["samples"] if e == epoch]
        assert not set(s0) & set(s1)
        assert set(s0) | set(s1) == _epoch_samples(dls.train.dataset, epoch)
        assert len(s0) == len(s1) == len(dls.train.dataset) // 2
    # averaged gradients: different data, identical weights; the caller gets rank 0's, which moved from the start
    assert r0["state"].keys() == r1["state"].keys() == sd.keys() == init.keys()
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in sd)
    assert all(torch.equal(sd[k], r0["state"][k]) for k in sd)
    assert any(not torch.equal(sd[k], init[k]) for k in sd)
    assert all(torch.equal(v, init[k]) for k, v in model.state_dict().items())  # the caller's model is untouched
    model.load_state_dict(sd)


def _ctx_probe(out_dir, tag, *, suffix):
    """Enters `distributed` by hand (as a notebook's fn would) and records the callbacks in and after it."""
    dls, model, _ = _setup()
    learn = restoration_learner(dls, model, loss="l1", lr=1e-3)
    with D.distributed(learn) as inside:
        during = [type(cb).__name__ for cb in inside.cbs]
        with learn.no_bar(), learn.no_logging():
            learn.fit(1)
    after = [type(cb).__name__ for cb in learn.cbs]
    torch.save(dict(during=during, after=after, model=type(learn.model).__name__, args=(tag, suffix)),
               out_dir / f"ctx{D.rank()}.pt")


@pytest.mark.slow
def test_launch_context_wraps_and_unwraps(tmp_path):
    D.launch(_ctx_probe, 2, tmp_path, "a", suffix="b")
    c0, c1 = (torch.load(tmp_path / f"ctx{r}.pt") for r in (0, 1))
    for c in (c0, c1):
        assert c["args"] == ("a", "b")
        assert "_CPUDistributedTrainer" in c["during"]
        assert not any("Distributed" in n for n in c["after"])
        assert c["model"] != "DistributedDataParallel"
    assert "ProgressCallback" in c0["during"]
    assert "ProgressCallback" not in c1["during"]
    assert "ProgressCallback" in c1["after"]


def _fail_on_rank1(msg):
    if D.rank() == 1:
        raise RuntimeError(msg)


@pytest.mark.slow
def test_launch_reports_a_failing_rank():
    with pytest.raises(ChildFailedError, match="boom on rank 1"):
        D.launch(_fail_on_rank1, 2, "boom on rank 1")


def test_one_process_runs_here(tmp_path):
    dls, model, init = _setup()
    sd = D.fit_distributed(lambda: restoration_learner(dls, model, loss="l1", lr=1e-3), _recording_fit(tmp_path),
                           num_processes=1)["state_dict"]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    assert (r0["pid"], r0["world"], r0["wrapped"]) == (os.getpid(), 1, False)
    assert r0["iters"] == EPOCHS * len(dls.train)
    assert all(torch.equal(sd[k], r0["state"][k]) for k in sd)
    assert any(not torch.equal(sd[k], init[k]) for k in sd)
    calls = []
    assert D.launch(lambda *a, **k: calls.append((os.getpid(), a, k)), 1, 3, x=4) is None
    assert calls == [(os.getpid(), (3,), {"x": 4})]


def _nan_on_rank1(pred, target):
    """L1 loss, except that rank 1's is NaN from its third batch on: only that rank sees the problem."""
    loss = (pred - target).abs().mean()
    _nan_on_rank1.calls = getattr(_nan_on_rank1, "calls", 0) + 1
    return loss * float("nan") if D.rank() == 1 and _nan_on_rank1.calls > 2 else loss


@pytest.mark.slow
def test_ranks_diverge_together_and_the_caller_hears_of_it():
    from lab.callbacks import DivergenceGuard

    dls, model, init = _setup()

    def make_learner():
        return restoration_learner(dls, model, loss=_nan_on_rank1, lr=1e-3, cbs=[DivergenceGuard(max_retries=1)])

    def fit(learn):
        with learn.no_bar(), learn.no_logging():
            learn.fit(3)

    res = D.fit_distributed(make_learner, fit, num_processes=2, cpu=True)  # rank 0 alone would wait forever
    assert res["diverged"] is True
    assert [e["reason"] for e in res["guard_events"]] == ["non-finite loss"] * 2  # one retry, then it gives up
    assert res["guard_events"][0]["iter"] == 2  # rank 0's own losses were fine: it heard of rank 1's NaN
    # the last snapshot is the one taken when the fit started (the next is due after 20 good steps): back to it
    assert all(torch.equal(res["state_dict"][k], init[k]) for k in init)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_bad_process_count(n):
    called = []
    with pytest.raises(ValueError, match=f"num_processes must be an int >= 1, got {n!r}"):
        D.launch(called.append, n)
    with pytest.raises(ValueError, match="num_processes must be an int >= 1"):
        D.fit_distributed(called.append, called.append, num_processes=n)
    assert not called


def test_more_gpus_than_present(monkeypatch):
    monkeypatch.setattr(D, "gpu_count", lambda: 1)
    monkeypatch.delenv(D.CPU_FLAG, raising=False)
    for cpu in (None, False):
        with pytest.raises(ValueError, match="num_processes=2 asks for more GPUs than the 1 visible.*cpu=True"):
            D.launch(print, 2, cpu=cpu)
    monkeypatch.setattr(D, "gpu_count", lambda: 0)
    with pytest.raises(ValueError, match="cpu=False asks for GPUs but no CUDA device is visible"):
        D.launch(print, 1, cpu=False)
    with pytest.raises(ValueError, match="fn must be callable, got str"):
        D.launch("train", 1)


def test_sync_bn_refused_on_cpu():
    dls, model, _ = _setup()
    learn = restoration_learner(dls, model)
    with pytest.raises(ValueError, match="sync_bn=True needs GPUs"):
        with D.distributed(learn, cpu=True, sync_bn=True):
            pass
    with D.distributed(learn, cpu=True) as same:  # outside a launch: a no-op
        assert same is learn
        assert not any(isinstance(cb, DistributedTrainer) for cb in learn.cbs)


def test_rank_helpers_and_threads(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (D.rank(), D.world_size(), D.is_rank0()) == (0, 1, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (D.rank(), D.world_size(), D.is_rank0()) == (1, 2, False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert [D.threads_per_process(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
