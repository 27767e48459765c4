"""The model registry: named presets that build plain nn.Modules, and self-describing checkpoints."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a preset function under its own name; registering a name twice is an error."""
    name = fn.__name__
    if name in _REGISTRY:
        raise KeyError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def list_models(pattern: str = "") -> list[str]:
    """Registered model names, sorted; `pattern` keeps names containing it."""
    return sorted(n for n in _REGISTRY if pattern in n)


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The preset function for `name`; KeyError lists the known names."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name]


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; the name and kwargs are kept on it for checkpoints."""
    fn = model_entrypoint(name)
    sig = inspect.signature(fn)
    accepts_var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in kwargs if k not in sig.parameters and not accepts_var_kw]
    if unknown:
        known = [p for p in sig.parameters if sig.parameters[p].kind is not p.VAR_KEYWORD]
        raise TypeError(f"model {name!r} does not take {unknown}; it takes {known}")
    model = fn(**kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model


def save_checkpoint(path: str | os.PathLike, model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None,
                    **extra: Any) -> Path:
    """Save weights (the model's, or `state_dict`) + model_name + model_kwargs (+ extra plain values) atomically."""
    import io

    from lab.utils import atomic_write_bytes

    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("model has no model_name: build it with lab.models.create(name, **kwargs) to checkpoint it")
    state = {k: v.detach().cpu() for k, v in (model.state_dict() if state_dict is None else state_dict).items()}
    payload = {"model_name": name, "model_kwargs": dict(getattr(model, "model_kwargs", {})), "state_dict": state}
    payload.update(extra)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model from a lab checkpoint alone (weights_only=True); returns (model, payload)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "model_name" not in payload or "state_dict" not in payload:
        raise ValueError(
            f"{str(path)!r} is not a lab checkpoint (needs model_name, model_kwargs, state_dict); "
            "for third-party weights use lab.models.load_pretrained"
        )
    model = create(payload["model_name"], **payload.get("model_kwargs", {}))
    model.load_state_dict(payload["state_dict"])
    return model, payload


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict[str, list[str]]:
    """Fine-tune start: copy every same-named, same-shaped tensor of a lab checkpoint into `model`.

    Returns {'loaded': [...], 'skipped': [...] (shape differs, e.g. another scale's tail), 'missing': [...]};
    ValueError when nothing matches (probably another architecture).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
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
