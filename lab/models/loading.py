"""Where a model to evaluate or fine-tune comes from: a run's weights, any lab checkpoint, or third-party weights."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from lab.models.pretrained import load_pretrained
from lab.runs import Run, find
from lab.user_code import load_carried
from lab.utils import user_path


def load_model(run: str | int = "", checkpoint: str = "", pretrained: str = "", *, model: str = "",
               scale: int = 0, runs_root: str | os.PathLike | None = None,
               trust: bool = False) -> tuple[nn.Module, Path, Run | None]:
    """The model to use and where it came from: (model in eval mode, the weights file, the source run or None).

    - `pretrained`: a third-party weights file (official IMDN, IMDN-RTC, FSRCNN) or a lab checkpoint; `model`
      names the registered architecture when the keys do not tell, `scale` overrides the one read from them.
    - `run` (an id or directory name under `runs_root`): that run's `checkpoint` ('best', 'final', 'last', a file
      name in its checkpoints, or a path), default its weights checkpoint (`Run.weights_checkpoint`); the code the
      run carries (its own architecture, `lab.user_code`) is loaded first if you trust it (or `trust`).
    - `checkpoint` alone: a path to a lab checkpoint.
    """
    source = None
    if pretrained:
        path = user_path(pretrained)
        net = load_pretrained(path, model or None, **({"scale": scale} if scale else {}))
    elif run != "" and run is not None:
        source = find(run, runs_root)
        load_carried(source, trust)
        path = _run_checkpoint(source, checkpoint)
        net = load_pretrained(path)
    elif checkpoint:
        path = user_path(checkpoint)
        net = load_pretrained(path)
    else:
        raise ValueError("nothing to load: give run (e.g. \"42\"), checkpoint (a lab checkpoint path) or pretrained "
                         "(third-party weights)")
    return net.eval(), path.resolve(), source


def _run_checkpoint(run: Run, checkpoint: str) -> Path:
    """A run's checkpoint named by kind ('best'), file name ('final', 'gan_last', with or without .pth) or path; default: its
    weights checkpoint."""
    if not checkpoint:
        return run.weights_checkpoint()
    if Path(checkpoint).is_file():
        return Path(checkpoint)
    stem = Path(checkpoint).stem
    phase, _, kind = stem.rpartition("_")
    try:
        path = run.checkpoint(kind, phase)
    except ValueError:
        path = None
    if path is None or not path.is_file():
        found = [p.name for p in run.checkpoints()]
        raise FileNotFoundError(f"run {run.name} has no checkpoint {checkpoint!r} (found: {found or 'none'})")
    return path
