"""The model registry: named presets that build plain nn.Modules (checkpoints live in `lab.models.checkpoints`)."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from lab.registry import Registry

MODELS = Registry("model")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a preset function under its own name; registering a name twice is an error."""
    return MODELS.register(fn)


def list_models(pattern: str = "") -> list[str]:
    """Registered model names, sorted; `pattern` keeps names containing it."""
    return sorted(n for n in MODELS if pattern in n)


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The preset function for `name`; KeyError lists the known names."""
    return MODELS[name]


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; the name and kwargs are kept on it for checkpoints."""
    fn = model_entrypoint(name)
    unknown, known = MODELS.check_kwargs(name, kwargs)
    if unknown:
        raise TypeError(f"model {name!r} does not take {unknown}; it takes {known}")
    model = fn(**kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
