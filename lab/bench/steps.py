"""P1 and P2 of `lab bench`: the lab's Learner against a hand-written PyTorch loop, and the training step's
achieved FLOP rate against this machine's conv peak.

P1 runs one fit of `lab.learner.restoration_learner` (the train notebook's default training callbacks, its LR
schedule) and, inside it, after every `block` Learner steps the same number of steps of a hand loop on its own copy of
the same initial network, the same pre-made batches (in memory, so data cost is out of both) and the same optimizer
settings: fastai's Adam in the Learner, `torch.optim.Adam` with equal hyper-parameters (lr, betas, eps, L2 weight
decay) in the hand loop, the LR and beta1 of the same one-cycle schedule set every step. Paired blocks alternate all
through the fit, so a load burst hits both sides alike; the median of the per-round ratios is reported, with both
loss sequences (the same steps give the same losses).
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import sys
import time
from typing import Any, Callable, Sequence

import torch
from fastai.callback.core import Callback, CancelFitException
from fastai.data.core import DataLoaders
from torch import nn
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from lab.bench.common import Sizes, bf16_is_fast, demo_params, interleave, median_ratio
from lab.data import Budget
from lab.learner import restoration_learner, schedule_callbacks, training_callbacks
from lab.models import create
from lab.params import notebook_defaults

STEPS_PER_EPOCH = 20  # the Learner's epochs (each ends with its callbacks' per-epoch work) in the P1 fit
CALLBACK_PARAMS = ("clip", "clip_mode", "ema", "guard", "mixup", "mixup_space", "seed")  # training_callbacks(...)


def make_batches(n: int, batch: int, patch: int, scale: int = 2, in_ch: int = 3, seed: int = 0,
                 device: str | torch.device = "cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` random (LR, HR) batches made once, in memory. Shape: (batch, in_ch, patch, patch), HR `scale` x larger."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch, in_ch, patch, patch, generator=g).to(device),
             torch.rand(batch, in_ch, patch * scale, patch * scale, generator=g).to(device)) for _ in range(n)]


class PremadeBatches:
    """A training loader over pre-made batches: `steps` per epoch, cycling through them across epochs, so the
    Learner's k-th step sees the batch the hand loop's k-th step sees."""

    def __init__(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], steps: int):
        self.batches, self.steps, self.served = list(batches), steps, 0
        self.bs = len(self.batches[0][0]) if self.batches else 0
        self.device = self.batches[0][0].device if self.batches else None

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.batches[self.served % len(self.batches)]
            self.served += 1

    def to(self, device: Any) -> "PremadeBatches":
        self.batches = [(x.to(device), y.to(device)) for x, y in self.batches]
        self.device = device
        return self


class HandLoop:
    """The loop a PyTorch user writes: forward (under bf16 autocast when `amp` is 'bf16'), L1 on fp32, backward,
    `torch.optim.Adam` step; lr and beta1 set every step from the schedule the Learner's scheduler follows."""

    def __init__(self, model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *, total_steps: int,
                 lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, wd: float = 0.0,
                 schedule: str = "one_cycle", amp: str = "none"):
        self.model, self.batches, self.total, self.i = model.train(), list(batches), total_steps, 0
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, betas=tuple(betas), eps=eps, weight_decay=wd)
        budget = Budget(total_steps, total_steps, total_steps)
        self.scheds = schedule_callbacks(budget, lr, schedule)[0].scheds
        self.beta2, self.bf16 = betas[1], amp == "bf16"

    def __call__(self) -> torch.Tensor:
        pos = self.i / self.total
        for g in self.opt.param_groups:
            g["lr"] = self.scheds["lr"](pos)
            if "mom" in self.scheds:
                g["betas"] = (self.scheds["mom"](pos), self.beta2)
        x, y = self.batches[self.i % len(self.batches)]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(x)
        loss = F.l1_loss(out.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.i += 1
        return loss.detach()


class Alternate(Callback):
    """After every `block` training steps of the Learner, `block` steps of the hand loop: both blocks timed, the
    first `warmup` rounds dropped; the fit ends after `rounds` rounds, or `seconds` (at least `min_rounds`)."""

    order = 1000  # after every other callback's after_batch: a Learner block ends when its last step is done

    def __init__(self, hand: HandLoop, block: int, rounds: int, seconds: float, warmup: int = 1, min_rounds: int = 3):
        self.hand, self.block, self.rounds, self.seconds = hand, block, rounds, seconds
        self.warmup, self.min_rounds = warmup, min_rounds

    def before_fit(self):
        self.learner_s, self.hand_s, self.learner_loss, self.hand_loss = [], [], [], []
        self.steps, self.t0, self.t = 0, None, time.perf_counter()

    def after_batch(self):
        if not self.training:
            return
        self.learner_loss.append(self.learn.loss.detach())
        self.steps += 1
        if self.steps % self.block:
            return
        learner = time.perf_counter() - self.t
        t = time.perf_counter()
        self.hand_loss += [self.hand() for _ in range(self.block)]
        hand = time.perf_counter() - t
        if self.steps // self.block > self.warmup:
            self.learner_s.append(learner)
            self.hand_s.append(hand)
            self.t0 = self.t0 or t
            done = len(self.hand_s) >= self.rounds or (
                len(self.hand_s) >= self.min_rounds and time.perf_counter() - self.t0 > self.seconds)
            if done:
                raise CancelFitException()
        self.t = time.perf_counter()


def notebook_callbacks() -> list:
    """The training callbacks the train notebook switches on by default (its parameters' default values)."""
    d = notebook_defaults("train")
    return training_callbacks(**{k: d[k] for k in CALLBACK_PARAMS})


def learner_vs_hand(model: str = "edsr_baseline", amp: str = "none", *, batch: int = 16, patch: int = 48,
                    scale: int = 2, block: int = 2, rounds: int = 40, seconds: float = 90.0, warmup: int = 1,
                    lr: float = 1e-3, schedule: str = "one_cycle", seed: int = 0,
                    model_kw: dict[str, Any] | None = None) -> dict[str, Any]:
    """P1 for one precision ('none': fp32, or 'bf16'): steps/s of the Learner and of the hand loop in alternating
    blocks of `block` steps, their median per-round ratio, and how far their loss sequences differ."""
    torch.manual_seed(seed)
    net = create(model, scale=scale, **(model_kw or {}))
    batches = make_batches(4, batch, patch, scale, getattr(net, "in_ch", 3), seed)
    total = block * (warmup + rounds + 1)
    hand = HandLoop(copy.deepcopy(net), batches, total_steps=total, lr=lr, schedule=schedule, amp=amp)
    alt = Alternate(hand, block, rounds, seconds, warmup)
    dls = DataLoaders(PremadeBatches(batches, STEPS_PER_EPOCH), PremadeBatches(batches, 0))
    learn = restoration_learner(dls, net, loss="l1", opt="adam", lr=lr, amp=amp, cbs=notebook_callbacks())
    budget = Budget(total, STEPS_PER_EPOCH, STEPS_PER_EPOCH)
    with learn.no_bar(), learn.no_logging():
        learn.fit(budget.epochs, lr, cbs=[*schedule_callbacks(budget, lr, schedule), alt])
        cbs = [type(cb).__name__ for cb in learn.cbs if cb is not alt]
    n = min(len(alt.learner_loss), len(alt.hand_loss))
    a, b = torch.stack(alt.learner_loss[:n]).double(), torch.stack(alt.hand_loss[:n]).double()
    rel = ((a - b).abs() / b.abs().clamp_min(1e-12))
    ratios = [h / lrn for h, lrn in zip(alt.hand_s, alt.learner_s)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"amp": "fp32" if amp in ("none", None) else amp, "model": model, "batch": batch, "patch": patch,
            "block": block, "rounds": len(ratios), "learner_steps_s": block / statistics.median(alt.learner_s),
            "hand_steps_s": block / statistics.median(alt.hand_s), "ratio": median_ratio(alt.hand_s, alt.learner_s),
            "ratio_q1": q[0], "ratio_q3": q[2], "losses_compared": n,
            "loss_rel_diff_first5": float(rel[:5].max()) if n else float("nan"),
            "loss_rel_diff_max": float(rel.max()) if n else float("nan"),
            "callbacks": cbs, "learner_losses": a.tolist(), "hand_losses": b.tolist()}


def overhead_ms(model: str = "edsr_baseline", rounds: int = 20, seconds: float = 10.0,
                model_kw: dict[str, Any] | None = None) -> dict[str, float]:
    """The Learner's own cost per step: Learner minus hand loop on a 4x4-px batch of one, where the network's
    compute is next to nothing (what remains: fastai's per-parameter optimizer, the callbacks, Python)."""
    r = learner_vs_hand(model, "none", batch=1, patch=4, block=5, rounds=rounds, seconds=seconds, model_kw=model_kw)
    learner, hand = 1e3 / r["learner_steps_s"], 1e3 / r["hand_steps_s"]
    return {"overhead_ms": learner - hand, "tiny_learner_ms": learner, "tiny_hand_ms": hand}


def bench_learner(sizes: Sizes, model: str = "edsr_baseline") -> list[dict[str, Any]]:
    """P1 in fp32 and (where bf16 is native) bf16, each with the Learner's overhead per step as a share of the
    hand loop's step; a CPU that would emulate bf16 gets a row saying so."""
    over = overhead_ms(model, sizes.rounds, min(sizes.seconds, 10.0), sizes.model_kw)
    rows = []
    for amp in ("none", "bf16"):
        if amp == "bf16" and not bf16_is_fast():
            rows.append({"amp": "bf16", "skipped": "no native bf16 on this CPU (no AMX / AVX512-BF16): autocast "
                         "would emulate it many times slower than fp32, and amp='auto' trains in fp32 here"})
            continue
        r = learner_vs_hand(model, amp, batch=sizes.batch, patch=sizes.patch, rounds=sizes.rounds,
                            seconds=sizes.learner_seconds, model_kw=sizes.model_kw)
        rows.append({**{k: v for k, v in r.items() if k not in ("learner_losses", "hand_losses")}, **over,
                     "overhead_share": over["overhead_ms"] / (1e3 / r["hand_steps_s"])})
    return rows


# --- P2: FLOP rate of the training step vs the conv peak


def step_flops_split(model: nn.Module, batch: int, patch: int, scale: int = 2) -> tuple[int, int]:
    """(forward, backward) FLOPs of one training step with an L1 loss, as FlopCounterMode counts them (matmuls
    and convolutions; the optimizer's elementwise update is not counted)."""
    net = copy.deepcopy(model).train()
    c = getattr(net, "in_ch", 3)
    x, y = make_batches(1, batch, patch, scale, c)[0]
    with FlopCounterMode(display=False) as counter:
        out = net(x)
    fwd = int(counter.get_total_flops())
    with FlopCounterMode(display=False) as counter:
        F.l1_loss(out, y).backward()
    return fwd, int(counter.get_total_flops())


def step_flops(model: nn.Module, batch: int, patch: int, scale: int = 2) -> int:
    """FLOPs of one training step's forward and backward (see `step_flops_split`)."""
    return sum(step_flops_split(model, batch, patch, scale))


def conv_fn(amp: str, channels: int = 64, size: int = 256, batch: int = 1) -> tuple[Callable[[], Any], int]:
    """A large 3x3 conv (channels -> channels, `size`^2 px) forward as a closure, and its FLOPs."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.rand(batch, channels, size, size, generator=g)
    flops = 2 * batch * channels * channels * 9 * size * size

    @torch.no_grad()
    def run() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
            return conv(x)

    return run, flops


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines) for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def step_breakdown(step: Callable[[], Any], flops: tuple[int, int], repeats: int = 2) -> dict[str, float]:
    """Where one training step's time goes (torch.profiler over `repeats` steps): the share in forward and in
    backward convolutions, the rate each reaches on its FLOPs (`flops`: forward, backward), and the rest."""
    step()
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(repeats):
            step()
        wall = (time.perf_counter() - t) / repeats
    us = {e.key: e.cpu_time_total / repeats / 1e6 for e in prof.key_averages()
          if e.key in ("aten::convolution", "aten::convolution_backward")}
    fwd_s, bwd_s = us.get("aten::convolution", 0.0), us.get("aten::convolution_backward", 0.0)
    return {"profiled_step_s": wall, "conv_share": (fwd_s + bwd_s) / wall,
            "conv_gflops_s": sum(flops) / max(fwd_s + bwd_s, 1e-9) / 1e9, "conv_fwd_s": fwd_s,
            "conv_fwd_gflops_s": flops[0] / max(fwd_s, 1e-9) / 1e9, "conv_bwd_s": bwd_s,
            "conv_bwd_gflops_s": flops[1] / max(bwd_s, 1e-9) / 1e9, "non_conv_s": wall - fwd_s - bwd_s}


def bench_flops(sizes: Sizes, model: str = "edsr_baseline") -> dict[str, Any]:
    """P2: the training step's GFLOP/s (hand loop, fp32 and where native bf16) as a fraction of this machine's 3x3
    conv peak in the same precision: the faster of a large conv (64 -> 64 channels, one 256 x 256 image) and the
    step's own conv shape (batch x 64 x patch^2), forward only; all interleaved. Also bf16 over fp32 steps/s and
    where the fp32 step's time goes."""
    torch.manual_seed(0)
    net = create(model, scale=2, **sizes.model_kw)
    split = step_flops_split(net, sizes.batch, sizes.patch)
    flops = sum(split)
    amps = ("none", "bf16") if bf16_is_fast() else ("none",)
    shapes = {"large": (1, sizes.conv_size), "step": (sizes.batch, sizes.patch)}
    fns: dict[str, Callable[[], Any]] = {}
    conv_flops: dict[str, int] = {}
    for amp in amps:
        fns[f"step_{amp}"] = HandLoop(copy.deepcopy(net), make_batches(2, sizes.batch, sizes.patch),
                                      total_steps=10**6, amp=amp)
        for shape, (b, side) in shapes.items():
            fns[f"conv_{shape}_{amp}"], conv_flops[shape] = conv_fn(amp, size=side, batch=b)
    times = interleave(fns, rounds=sizes.rounds, seconds=sizes.seconds, warmup=1)
    out: dict[str, Any] = {"model": model, "batch": sizes.batch, "patch": sizes.patch, "step_gflop": flops / 1e9,
                           "step_fwd_gflop": split[0] / 1e9, "rounds": len(times["step_none"]),
                           "convs": {k: f"{b} x 64 -> 64, 3x3, {side}x{side} px" for k, (b, side) in shapes.items()}}
    for amp in amps:
        name = "fp32" if amp == "none" else amp
        step_s = statistics.median(times[f"step_{amp}"])
        rates = {k: conv_flops[k] / statistics.median(times[f"conv_{k}_{amp}"]) / 1e9 for k in shapes}
        peak = max(rates.values())
        out.update({f"{name}_step_s": step_s, f"{name}_gflops_s": flops / step_s / 1e9,
                    **{f"{name}_conv_{k}_gflops_s": v for k, v in rates.items()},
                    f"{name}_conv_peak_gflops_s": peak, f"{name}_fraction_of_peak": flops / step_s / 1e9 / peak})
    if "bf16" in amps:
        out["bf16_speedup"] = median_ratio(times["step_none"], times["step_bf16"])
    else:
        out["bf16_skipped"] = "no native bf16 on this CPU (no AMX / AVX512-BF16)"
    out["fp32_breakdown"] = step_breakdown(fns["step_none"], split)
    return out


# --- `lab bench levers`: what the demo's step gains from channels_last and torch.compile


def bench_step_levers(sizes: Sizes, backend: str = "inductor") -> dict[str, Any]:
    """The demo's training step (its model, at the bench's batch and patch `Sizes`; a hand loop, fp32 or native bf16)
    eager, with channels_last, and compiled by `torch.compile(backend=...)`, interleaved from the same initial
    weights: each one's steps/s over eager, the compile time, and how far their first losses differ (the same
    arithmetic)."""
    params, _ = demo_params()
    kw = {**dict(params.get("model_kwargs") or {}), **sizes.model_kw}
    name, batch, patch = params.get("model", "edsr_baseline"), sizes.batch, sizes.patch
    amp = "bf16" if bf16_is_fast() else "none"
    torch.manual_seed(0)
    net = create(name, scale=2, **kw)
    batches = make_batches(2, batch, patch, 2, getattr(net, "in_ch", 3))
    loops = {"eager": HandLoop(copy.deepcopy(net), batches, total_steps=10**6, amp=amp),
             "channels_last": HandLoop(copy.deepcopy(net).to(memory_format=torch.channels_last),
                                       [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches],
                                       total_steps=10**6, amp=amp),
             "compiled": HandLoop(torch.compile(copy.deepcopy(net), backend=backend), batches, total_steps=10**6,
                                  amp=amp)}
    first = {k: float(fn()) for k, fn in loops.items() if k != "compiled"}
    t = time.perf_counter()
    first["compiled"] = float(loops["compiled"]())  # compiles forward and backward
    compile_s = time.perf_counter() - t
    times = interleave(loops, rounds=sizes.rounds, seconds=sizes.seconds, warmup=1)
    return {"model": name, "model_kwargs": kw, "batch": batch, "patch": patch, "amp": "fp32" if amp == "none" else amp,
            "backend": backend, "rounds": len(times["eager"]), "eager_step_ms": statistics.median(times["eager"]) * 1e3,
            **{f"{k}_speedup": median_ratio(times["eager"], times[k]) for k in ("channels_last", "compiled")},
            "compile_s": compile_s,
            "first_loss_rel_diff": max(abs(v - first["eager"]) / abs(first["eager"]) for v in first.values())}
