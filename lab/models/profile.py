"""Cost profile of a model: parameters, FLOPs, forward time, peak memory, a per-layer table, a budget check.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions, transposed convolutions,
matrix products and attention, with a multiply-add as 2 FLOPs; element-wise ops, norms, activations, pooling and
resizing are not counted (the convention of the SR/deblurring papers' cost tables, which usually quote MACs:
`gmacs = gflops / 2`). Everything is measured in inference mode (`eval()`, no autograd).
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from lab import vocab

DTYPES = {p: getattr(torch, t) for p, t in vocab.TORCH_DTYPES.items()}


def _check_size(input_size: Sequence[int]) -> tuple[int, ...]:
    size = tuple(int(s) for s in input_size)
    if len(size) != 4 or any(s < 1 for s in size):
        raise ValueError(f"input_size={tuple(input_size)!r}: expected (B, C, H, W) with positive ints, "
                         "e.g. (1, 3, 64, 64)")
    return size


def _device_of(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensors(x: Any) -> list[torch.Tensor]:
    """The tensors in `x` (nested tuples, lists and dicts)."""
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        x = list(x.values())
    return [t for v in x for t in _tensors(v)] if isinstance(x, (list, tuple)) else []


class _TensorMemoryTracker(TorchDispatchMode):
    """Tracks bytes of tensor storage created by aten ops and still alive; `peak` is the high-water mark.

    Storages are freed (and subtracted) when their Python storage object is collected, which torch ties to the
    C++ storage's lifetime. Allocator overhead and library scratch space (oneDNN workspaces) are not seen.
    A dispatch mode (torch.utils._python_dispatch) because the public measures miss or blur what this one counts:
    a TorchFunctionMode does not see autocast's low-precision weight copies (a ResUNet's bf16 peak reads 0.36
    instead of 3.8 MB), and torch.profiler's memory events add the convolution algorithms' scratch buffers, which
    do not scale with the input (a 4x larger input read 0.67 vs 0.64 MB), so the recorded `mem_mb_*` would change.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._alive: dict[int, int] = {}

    def _free(self, key: int, nbytes: int) -> None:
        if self._alive.pop(key, None) is not None:
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs)) if t.device.type != "meta"}
        for t in _tensors(out):
            if t.device.type == "meta":
                continue
            st = t.untyped_storage()
            key = st.data_ptr()
            # empty, a view or in-place result of an argument (e.g. a weight's transpose), or already counted
            if key == 0 or key in inputs or key in self._alive:
                continue
            n = st.nbytes()
            self._alive[key] = n
            self.live += n
            self.peak = max(self.peak, self.live)
            weakref.finalize(st, self._free, key, n)
        return out


def _autocast(device: torch.device, dtype: str):
    if dtype == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, input_size: Sequence[int], device: str | torch.device | None = None) -> int:
    """FLOPs of one forward pass as FlopCounterMode counts them (a multiply-add = 2 FLOPs).

    Shape: input_size is (B, C, H, W); the count covers the whole batch.
    """
    size = _check_size(input_size)
    dev = _device_of(model, device)
    was_training = model.training
    model.eval()
    try:
        x = torch.rand(size, generator=torch.Generator().manual_seed(0)).to(dev)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def profile(model: nn.Module, input_size: Sequence[int] = (1, 3, 64, 64), *, device: str | torch.device = "cpu",
            dtypes: Sequence[str] = ("fp32", "bf16"), repeats: int = 10, warmup: int = 3) -> dict[str, Any]:
    """Params, GFLOPs / GMACs, median forward ms and peak memory per dtype for one input size.

    - `params`: parameter count; `param_mb`: their size in MB (2**20 bytes).
    - `gflops`: FLOPs as FlopCounterMode counts them (multiply-add = 2 FLOPs), / 1e9; `gmacs` = `gflops` / 2.
    - `ms_<dtype>`: median wall time of `repeats` forwards after `warmup` untimed ones; 'fp32' is plain float32,
      'bf16' / 'fp16' run each forward in its own `torch.autocast` region (CPU or CUDA), so weight casts are
      included; CUDA is synchronised around each forward.
      CPU timings depend on `torch.get_num_threads()`, recorded as `threads`.
    - `mem_mb_<dtype>`: peak memory of one forward above what was allocated before it (input and weights excluded;
      output and autocast's low-precision weight copies included). CUDA: `torch.cuda.max_memory_allocated`.
      CPU: the high-water mark of live tensor storage created by aten ops, tracked with a dispatch mode
      (allocator overhead and oneDNN scratch space are not seen; process RSS is not used: glibc keeps freed
      memory, so RSS deltas say little about one forward).
    The model is moved to `device` and left there, in the train/eval mode it had.
    Shape: input_size is (B, C, H, W); a uniform random input of that size is used.
    """
    size = _check_size(input_size)
    for d in dtypes:
        vocab.choose("dtype", d, DTYPES)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats}, warmup={warmup}: expected repeats >= 1 and warmup >= 0")
    dev = torch.device(device)
    model.to(dev)
    flops = count_flops(model, size, dev)
    params = count_params(model)
    result: dict[str, Any] = {
        "model": getattr(model, "model_name", type(model).__name__),
        "input_size": size,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "params": params,
        "param_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
    }
    was_training = model.training
    model.eval()
    try:
        x = torch.rand(size, generator=torch.Generator().manual_seed(0)).to(dev)
        with torch.no_grad():
            for dt in dtypes:
                # one autocast region per forward, as a per-batch loop has: weight casts are redone (and counted)
                # every call instead of coming from autocast's cache
                for _ in range(warmup):
                    with _autocast(dev, dt):
                        model(x)
                times = []
                for _ in range(repeats):
                    _sync(dev)
                    t0 = time.perf_counter()
                    with _autocast(dev, dt):
                        model(x)
                    _sync(dev)
                    times.append((time.perf_counter() - t0) * 1e3)
                result[f"ms_{dt}"] = statistics.median(times)
                with _autocast(dev, dt):
                    result[f"mem_mb_{dt}"] = _peak_memory(model, x, dev) / 2**20
    finally:
        model.train(was_training)
    return result


def _peak_memory(model: nn.Module, x: torch.Tensor, dev: torch.device) -> int:
    """Peak bytes allocated by one forward beyond what was live before it (see `profile`)."""
    if dev.type == "cuda":
        _sync(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        out = model(x)
        _sync(dev)
        peak = torch.cuda.max_memory_allocated(dev) - base
        del out
        return int(peak)
    tracker = _TensorMemoryTracker()
    with tracker:
        out = model(x)
    del out
    return tracker.peak


def _out_info(out: Any) -> tuple[Any, float]:
    tensors = _tensors(out)
    shapes = [tuple(t.shape) for t in tensors]
    mb = sum(t.numel() * t.element_size() for t in tensors) / 2**20
    return (shapes[0] if len(shapes) == 1 else shapes), mb


def layer_table(model: nn.Module, input_size: Sequence[int] = (1, 3, 64, 64),
                device: str | torch.device | None = None) -> pd.DataFrame:
    """One row per call of each module that holds parameters directly or has no children (bar nn.Identity).

    Columns: layer (qualified name), type, call (1 for the first call; shared modules, e.g. SRN's weights reused at
    every scale, get one row per call), output_shape, params (the module's own parameters, counted on its first
    row only, so the column sums to the model's parameter count), act_mb (output size in MB, 2**20 bytes).
    Rows are in call order; modules never called in the forward come last, with call 0 and no output.
    Shape: input_size is (B, C, H, W).
    """
    size = _check_size(input_size)
    dev = _device_of(model, device)
    rows: list[dict[str, Any]] = []
    counted: set[int] = set()
    calls: dict[str, int] = {}
    watched = [(n, m) for n, m in model.named_modules()  # nn.Identity (e.g. norm='none') is a placeholder: skipped
               if any(True for _ in m.parameters(recurse=False))
               or (not list(m.children()) and not isinstance(m, nn.Identity))]

    def own_params(m: nn.Module) -> int:
        n = 0
        for p in m.parameters(recurse=False):
            if id(p) not in counted:
                counted.add(id(p))
                n += p.numel()
        return n

    def hook(name: str):
        def fn(mod: nn.Module, inp: Any, out: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            shape, mb = _out_info(out)
            rows.append({"layer": name or "(model)", "type": type(mod).__name__, "call": calls[name],
                         "output_shape": shape, "params": own_params(mod), "act_mb": mb})
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in watched]
    was_training = model.training
    model.eval()
    try:
        x = torch.rand(size, generator=torch.Generator().manual_seed(0)).to(dev)
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for n, m in watched:
        if n not in calls:
            rows.append({"layer": n or "(model)", "type": type(m).__name__, "call": 0, "output_shape": None,
                         "params": own_params(m), "act_mb": 0.0})
    return pd.DataFrame(rows, columns=["layer", "type", "call", "output_shape", "params", "act_mb"])


def format_profile(prof: dict[str, Any]) -> str:
    """A few readable lines from a `profile` dict, for logs and notebooks."""
    lines = [f"{prof.get('model', 'model')}  input {tuple(prof['input_size'])}  on {prof['device']} "
             f"({prof['threads']} threads)",
             f"  params   {prof['params']:,} ({prof['param_mb']:.2f} MB)",
             f"  compute  {prof['gflops']:.3f} GFLOPs = {prof['gmacs']:.3f} GMACs"]
    for key in prof:
        if key.startswith("ms_"):
            dt = key[3:]
            mem = prof.get(f"mem_mb_{dt}")
            lines.append(f"  {dt:<5}    {prof[key]:.2f} ms" + (f", peak {mem:.1f} MB" if mem is not None else ""))
    return "\n".join(lines)


def summary(model: nn.Module, input_size: Sequence[int] = (1, 3, 64, 64), **profile_kw: Any) -> str:
    """Layer table + profile as one text block, like the model summaries pasted into training logs."""
    table = layer_table(model, input_size, device=profile_kw.get("device"))
    table = table.assign(output_shape=table["output_shape"].map(lambda s: "-" if s is None else str(s)))
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        text = table.to_string(index=False, formatters={"params": "{:,}".format, "act_mb": "{:.3f}".format})
    return text + "\n\n" + format_profile(profile(model, input_size, **profile_kw))


@dataclass
class BudgetCheck:
    """The answer of `fits_budget`: `ok`, the measured `numbers`, the `limits`; unpacks as (ok, numbers)."""

    ok: bool
    numbers: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.ok, self.numbers))

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failed(self) -> list[str]:
        """Names of the limits that were exceeded."""
        return [k for k, lim in self.limits.items() if self.numbers[k] > lim]

    def __repr__(self) -> str:
        def fmt(k: str, v: float) -> str:
            return f"{int(v):,}" if k == "params" else f"{v:.4g}"

        parts = [f"{k} {fmt(k, self.numbers[k])} {'>' if self.numbers[k] > lim else '<='} {fmt(k, lim)}"
                 for k, lim in self.limits.items()]
        return f"BudgetCheck({'fits' if self.ok else 'over budget'}: {'; '.join(parts)})"


def fits_budget(model: nn.Module, input_size: Sequence[int] = (1, 3, 64, 64), max_gflops: float | None = None,
                max_params: float | None = None, max_ms: float | None = None, *,
                device: str | torch.device = "cpu", dtype: str = "fp32", repeats: int = 5,
                warmup: int = 2) -> BudgetCheck:
    """Does the model fit the given limits (inclusive)? Only the named limits are measured (time only with max_ms).

    `ok, numbers = fits_budget(...)` works; the result also has `.limits`, `.failed` and a readable repr.
    FLOPs are counted on the model's own device; timing (max_ms) moves the model to `device`, as `profile` does.
    Shape: input_size is (B, C, H, W).
    """
    limits = {k: float(v) for k, v in (("gflops", max_gflops), ("params", max_params), ("ms", max_ms))
              if v is not None}
    if not limits:
        raise ValueError("fits_budget needs at least one of max_gflops, max_params, max_ms")
    vocab.choose("dtype", dtype, DTYPES)
    numbers: dict[str, float] = {}
    if "params" in limits:
        numbers["params"] = count_params(model)
    if "gflops" in limits:
        numbers["gflops"] = count_flops(model, input_size) / 1e9
    if "ms" in limits:
        prof = profile(model, input_size, device=device, dtypes=(dtype,), repeats=repeats, warmup=warmup)
        numbers["ms"] = prof[f"ms_{dtype}"]
    ok = all(numbers[k] <= lim for k, lim in limits.items())
    return BudgetCheck(ok, numbers, limits)
