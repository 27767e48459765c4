"""Self-describing lab checkpoints: weights + `model_name` + `model_kwargs` (+ plain extras), so a model is rebuilt
from the file alone; loaded with `weights_only=True` (a file cannot run code)."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lab.models.registry import create
from lab.utils import atomic_write_bytes


def checkpoint_payload(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None,
                       **extra: Any) -> dict[str, Any]:
    """The dict a lab checkpoint holds: model_name, model_kwargs, CPU weights (the model's or `state_dict`), extras."""
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("model has no model_name: build it with lab.models.create(name, **kwargs) to checkpoint it")
    state = {k: v.detach().cpu() for k, v in (model.state_dict() if state_dict is None else state_dict).items()}
    return {"model_name": name, "model_kwargs": dict(getattr(model, "model_kwargs", {})), "state_dict": state,
            **extra}


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """A checkpoint payload serialised by `torch.save`."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None,
                    **extra: Any) -> Path:
    """Save weights (the model's, or `state_dict`) + model_name + model_kwargs (+ extra plain values) atomically."""
    return atomic_write_bytes(path, checkpoint_bytes(checkpoint_payload(model, state_dict, **extra)))


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: a file's tensors and plain containers, never pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"refused {str(path)!r}: it holds pickled Python objects, which could run code when loaded; "
                         "checkpoints load with weights_only=True (tensors and plain values only). Re-save the "
                         f"weights as a state dict. ({str(e).splitlines()[0][:160]})") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{str(path)!r} is not a complete checkpoint (truncated, still being written, or another "
                         f"format; {path.stat().st_size} bytes): {str(e).splitlines()[0][:160]}") from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model from a lab checkpoint alone (weights_only=True); returns (model, payload)."""
    payload = read_checkpoint(path, map_location)
    if not isinstance(payload, dict) or "model_name" not in payload or "state_dict" not in payload:
        raise ValueError(
            f"{str(path)!r} is not a lab checkpoint (needs model_name, model_kwargs, state_dict); "
            "for third-party weights use lab.models.load_pretrained"
        )
    model = create(payload["model_name"], **payload.get("model_kwargs", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise ValueError(f"{str(path)!r}: its weights do not fit {payload['model_name']} "
                         f"{payload.get('model_kwargs', {})}: {str(e).splitlines()[0][:200]}") from None
    return model, payload


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict[str, list[str]]:
    """Fine-tune start: copy every same-named, same-shaped tensor of a lab checkpoint into `model`.

    Returns {'loaded': [...], 'skipped': [...] (shape differs, e.g. another scale's tail), 'missing': [...]};
    ValueError when nothing matches (probably another architecture).
    """
    payload = read_checkpoint(path)
    src = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(src, dict):
        raise ValueError(f"{str(path)!r} holds no state dict")
    own = model.state_dict()
    loaded = [k for k, v in src.items() if k in own and own[k].shape == v.shape]
    if not loaded:
        raise ValueError(f"no tensor of {str(path)!r} ({payload.get('model_name', '?')}) fits "
                         f"{getattr(model, 'model_name', type(model).__name__)}: is it the same architecture?")
    model.load_state_dict({**own, **{k: src[k] for k in loaded}})
    return {"loaded": loaded, "skipped": [k for k in src if k in own and k not in loaded],
            "missing": [k for k in own if k not in src]}
