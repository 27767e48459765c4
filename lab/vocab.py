"""The lab's vocabulary, in one place at the bottom layer: the fixed sets of names a parameter takes (precisions,
adversarial losses, clip modes, GAN switchers, mixup spaces), the environment variables the lab reads, and `choose`,
the one way a lookup of a name fails.

An unknown name raises `UnknownName`, a KeyError: asking a table for a name that is not in it is a failed lookup,
every registry (`lab.registry.Registry`, a Mapping) already fails that way, and the callers that add context (a
sweep naming its run, the CLI's exit 2) catch it. It reads as one line (no repr quotes around the message) and
names the known names. A value out of a numeric range stays a ValueError (`lab.params.check`).
"""

from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")

# -- fixed sets of names ----------------------------------------------------------------------------------------
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # precision -> torch dtype name
PRECISIONS = tuple(TORCH_DTYPES)  # what a model runs in (lab.infer `amp`, lab.models.profile `dtypes`)
AMP_MODES = ("none", "bf16", "fp16", "auto")  # training's mixed precision (the `amp` parameter; auto: per device)
ADV_LOSSES = ("vanilla", "lsgan", "hinge", "ragan")  # adversarial losses (lab.gan, the `gan_loss` parameter)
CLIP_MODES = ("norm", "value")  # gradient clipping (lab.callbacks.ClipGrad, the `clip_mode` parameter)
SWITCHERS = ("adaptive", "fixed")  # GAN generator/critic switchers (lab.gan, the `switcher` parameter)
MIXUP_SPACES = ("srgb", "linear")  # where mixup blends (lab.mixup, the `mixup_space` parameter)
DEGRADE_ON = ("loader", "device")  # where training patches are degraded (lab.data, the `degrade_on` parameter)

# -- environment variables the lab reads --------------------------------------------------------------------------
ENV_PAPERMILL = "LAB_PAPERMILL"  # set by the runner for its kernels: widgets draw static PNGs, no live session
ENV_STATIC = "LAB_STATIC"  # set by a user: widgets draw static PNGs
ENV_RUNNER_PID = "LAB_RUNNER_PID"  # the runner's pid, for the kernel's watchdog (lab.session)
ENV_RUNS_DIR = "LAB_RUNS_DIR"  # the runs root (default runs/)
ENV_CACHE_DIR = "LAB_CACHE_DIR"  # the decoded-image cache (lab.imcache)
ENV_BENCHMARKS = "LAB_BENCHMARKS"  # the benchmark sets' root (<root>/Set5/HR, ...)
ENV_REFERENCE_DATA = "LAB_REFERENCE_DATA"  # the shared reference data
ENV_JUPYTER_TOKEN = "LAB_JUPYTER_TOKEN"  # `lab notebook`'s token (default: a random one)
ENV_DEBUG = "LAB_DEBUG"  # the CLI shows tracebacks
ENV_LEDGER_CACHE = "LAB_LEDGER_CACHE"  # where the ledger's finished rows are cached (`off`: not cached)
ENV_TRUST_FILE = "LAB_TRUST_FILE"  # the list of trusted code a run may carry (lab.user_code)


class UnknownName(KeyError):
    """A name that is not in its table; the message names the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def unknown(kind: str, name: object, known: Iterable[object], plural: str | None = None) -> UnknownName:
    """The error for `name` missing from `known`: "unknown <kind> 'x'; known <plural>: a, b"."""
    return UnknownName(f"unknown {kind} {name!r}; known {plural or kind + 's'}: {', '.join(map(str, known))}")


def choose(kind: str, name: T, known: Iterable[T], plural: str | None = None) -> T:
    """`name` if it is one of `known`, else `UnknownName` naming the known ones."""
    known = tuple(known)
    if name not in known:
        raise unknown(kind, name, known, plural)
    return name
