"""Distributed: one training run on several processes (DDP) via accelerate's launcher and fastai's DistributedTrainer.

`launch` starts a function on N processes (from a notebook kernel or a script), `distributed` makes a Learner
data-parallel for a block, `fit_distributed` does both and hands rank 0's weights (and whether the run diverged)
back to the caller.

On GPUs fastai's shipped path applies (NCCL, one GPU per process). On CPU fastai's `DistributedDL` would move
its index broadcast to CUDA, so inside `distributed(..., cpu=True)` the loaders broadcast a CPU tensor (gloo).
Only rank 0 should write run files: callbacks that write (checkpoints, CSV logs, ledger rows) check `is_rank0()`.
"""

from __future__ import annotations

import os
import socket
import tempfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from accelerate import notebook_launcher
from accelerate.utils import extract_model_from_parallel, parse_flag_from_env
from fastai.callback.progress import ProgressCallback
from fastai.distributed import DistributedDL, DistributedTrainer, teardown_distrib
from fastai.learner import Learner
from fastai.torch_core import defaults, num_distrib, rank_distrib

from lab.callbacks import divergence_outcome
from lab.utils import threads_per_process

CPU_FLAG = "ACCELERATE_USE_CPU"  # accelerate's own switch; `launch` sets it so Accelerator() and `distributed` agree


def rank() -> int:
    """This process's rank in the run (0 outside a distributed run)."""
    return rank_distrib()


def world_size() -> int:
    """How many processes share the run (1 outside a distributed run)."""
    return max(num_distrib(), 1)


def is_rank0() -> bool:
    """Whether this process should write run files (checkpoints, logs): rank 0, or the only process."""
    return rank() == 0


def gpu_count() -> int:
    """Visible CUDA devices, counted through NVML where possible so a later fork can still use CUDA."""
    return torch.cuda.device_count()


def _use_cpu(cpu: bool | None) -> bool:
    """Resolve `cpu=None`: CPU when `launch` asked for it or when no CUDA device is visible."""
    if cpu is not None:
        return bool(cpu)
    return parse_flag_from_env(CPU_FLAG) or gpu_count() == 0


def _check_launch(num_processes: int, cpu: bool | None) -> bool:
    """Validate the process count against the devices; returns the resolved `cpu`."""
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes must be an int >= 1, got {num_processes!r}")
    gpus = gpu_count()
    if cpu is False and gpus == 0:
        raise ValueError("cpu=False asks for GPUs but no CUDA device is visible; pass cpu=None (auto) or cpu=True")
    use_cpu = _use_cpu(cpu)
    if not use_cpu and num_processes > gpus:
        raise ValueError(f"num_processes={num_processes} asks for more GPUs than the {gpus} visible; "
                         f"use num_processes <= {gpus}, or cpu=True to run the processes on CPU")
    return use_cpu


def _free_port() -> str:
    """A free TCP port on localhost, so concurrent runs on one machine do not collide on accelerate's 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _worker(fn: Callable, cpu: bool, threads: int, *args: Any) -> None:
    """Per-process set-up (device or thread count), then `fn(*args)`, then the process group is freed."""
    if cpu:
        os.environ[CPU_FLAG] = "true"
        defaults.use_cuda = False  # fastai's default_device/to_device in this process stay on CPU
        os.environ["OMP_NUM_THREADS"] = str(threads)  # also stops accelerate re-deriving it from physical cores
        torch.set_num_threads(threads)
    else:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # as fastai's setup_distrib does
    try:
        fn(*args)
    finally:
        teardown_distrib()


def launch(fn: Callable, num_processes: int = 2, *args: Any, cpu: bool | None = None, port: int | str | None = None,
           **kwargs: Any) -> None:
    """Run `fn(*args, **kwargs)` on `num_processes` processes with accelerate's `notebook_launcher` (kernel or script).

    `cpu=None` uses one GPU per process when CUDA is visible, else CPU processes (gloo) with the cores split
    between them. `num_processes == 1` calls `fn` here. Processes are forked: the parent must not have touched
    CUDA yet, and nothing comes back; write results from rank 0 (`fit_distributed` does this for weights).
    """
    use_cpu = _check_launch(num_processes, cpu)
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if num_processes == 1:
        fn(*args, **kwargs)
        return
    target = partial(fn, **kwargs) if kwargs else fn
    notebook_launcher(_worker, args=(target, use_cpu, threads_per_process(num_processes), *args),
                      num_processes=num_processes, use_port=str(port or _free_port()))


class _CPUDistributedDL(DistributedDL):
    """fastai's DistributedDL with the index broadcast kept on CPU, which gloo handles and NCCL's CUDA copy breaks."""

    def _broadcast(self, t, rank):
        t = torch.LongTensor(t)
        torch.distributed.broadcast(t, rank)
        return t.tolist()


class _CPUDistributedTrainer(DistributedTrainer):
    """fastai's DistributedTrainer wrapping loaders in `_CPUDistributedDL`."""

    def _wrap_dl(self, dl):
        return dl if isinstance(dl, DistributedDL) else _CPUDistributedDL(dl, device=self.learn.model.device)


@contextmanager
def distributed(learn: Learner, cpu: bool | None = None, sync_bn: bool | None = None,
                **accelerator_kwargs: Any) -> Iterator[Learner]:
    """Make `learn` data-parallel over the launched processes for the block; a no-op in a single process.

    Each process trains on its share of every epoch's batches and gradients are averaged (DDP). `sync_bn=None`
    converts BatchNorm to SyncBatchNorm on GPU only (it has no CPU kernel). Extra keywords go to `Accelerator`.
    """
    cpu = _use_cpu(cpu)
    sync_bn = not cpu if sync_bn is None else sync_bn
    if cpu and sync_bn:
        raise ValueError("sync_bn=True needs GPUs (SyncBatchNorm has no CPU kernel); use sync_bn=None or False on CPU")
    if num_distrib() <= 1:
        yield learn
        return
    if cpu:  # what Learner.to_distributed does, with the CPU-safe trainer
        learn.add_cb(_CPUDistributedTrainer(sync_bn, cpu=True, **accelerator_kwargs))
        if rank_distrib():
            learn.remove_cb(ProgressCallback)
    else:
        learn.to_distributed(sync_bn, **accelerator_kwargs)
    try:
        yield learn
    finally:
        learn.detach_distributed()


def _fit_worker(make_learner: Callable[[], Learner], fit: Callable[[Learner], Any], out: str, cpu: bool) -> None:
    """One process of `fit_distributed`: build, fit inside `distributed`, rank 0 saves the unwrapped weights and
    whether the divergence guard stopped the run (the ranks decide that together)."""
    learn = make_learner()
    with distributed(learn, cpu=cpu):
        fit(learn)
    if is_rank0():
        model = extract_model_from_parallel(learn.model)
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    **divergence_outcome(learn)}, out)


def fit_distributed(make_learner: Callable[[], Learner], fit: Callable[[Learner], Any], num_processes: int = 2,
                    cpu: bool | None = None) -> dict[str, Any]:
    """Train one run on `num_processes` processes; returns rank 0's outcome: `state_dict` (final weights, CPU
    tensors), `diverged` (the DivergenceGuard gave up) and `guard_events` (what it caught).

    Each process calls `make_learner()` (forked, so it may close over the caller's DataLoaders and model) and
    `fit(learn)` inside `distributed`; load the weights into your own model with
    `model.load_state_dict(result["state_dict"])`.
    """
    use_cpu = _check_launch(num_processes, cpu)
    with tempfile.TemporaryDirectory(prefix="lab-ddp-") as tmp:
        out = str(Path(tmp) / "rank0_state.pt")
        launch(_fit_worker, num_processes, make_learner, fit, out, use_cpu, cpu=use_cpu)
        if not Path(out).is_file():
            raise RuntimeError(f"rank 0 finished without writing its weights to {out}; see the processes' output")
        return torch.load(out, map_location="cpu", weights_only=True)
