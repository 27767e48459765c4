"""One registry idiom for every named thing a notebook asks for: models, losses, degradation ops and presets,
schedules, optimizers, GAN switchers, post-processing ops.

A `Registry` maps names to builders. Entries are added with `@REG.register` (the function's name) or
`REG.register(obj, name="...")`; registering a name twice is an error, and looking up an unknown name raises
`lab.vocab.UnknownName` (a KeyError) that lists the known ones. `REG.check_kwargs(name, kwargs)` says which keyword arguments an entry does not
take, so each caller can refuse them with its own wording.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterator, TypeVar

from lab.vocab import unknown

T = TypeVar("T")


REGISTRIES: list[Registry] = []  # every registry made, in order (lab.user_code sees what a user module added)


class Registry:
    """Names -> objects of one kind (`kind` is used in messages: "unknown model 'x'; known models: ...")."""

    def __init__(self, kind: str, entries: dict[str, Any] | None = None, *, plural: str | None = None,
                 lower: bool = False):
        self.kind, self.plural, self.lower = kind, plural or f"{kind}s", lower
        self._items: dict[str, Any] = {}
        REGISTRIES.append(self)
        for name, obj in (entries or {}).items():
            self.register(obj, name=name)

    def _key(self, name: str) -> str:
        return name.lower() if self.lower and isinstance(name, str) else name

    def register(self, obj: T | None = None, *, name: str | None = None) -> Any:
        """Add `obj` under `name` (default: its `__name__`); usable as `@reg.register` or `@reg.register(name=...)`."""
        def add(o: T) -> T:
            key = self._key(name or o.__name__)
            if key in self._items:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._items[key] = o
            return o

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove `name` (a user module loaded again registers its names anew, lab.user_code)."""
        self._items.pop(self._key(name), None)

    def __getitem__(self, name: str) -> Any:
        key = self._key(name)
        if not isinstance(key, str) or key not in self._items:
            raise unknown(self.kind, name, self.names(), self.plural)
        return self._items[key]

    def get(self, name: str, default: Any = None) -> Any:
        """The entry for `name`, or `default` (no error)."""
        return self._items.get(self._key(name), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def items(self) -> list[tuple[str, Any]]:
        """(name, entry) pairs in registration order."""
        return list(self._items.items())

    def accepted_kwargs(self, name: str, skip: int = 0) -> list[str]:
        """Keyword names entry `name` takes (its signature; the first `skip` positional ones left out)."""
        params = list(inspect.signature(self[name]).parameters.values())[skip:]
        return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def check_kwargs(self, name: str, kwargs: dict[str, Any], skip: int = 0) -> tuple[list[str], list[str]]:
        """(the keys of `kwargs` entry `name` does not take, the ones it takes); nothing is bad if it takes **kw."""
        sig = inspect.signature(self[name])
        accepted = self.accepted_kwargs(name, skip)
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return [], accepted
        return [k for k in kwargs if k not in accepted], accepted

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def build(registry: Registry, name: str, *args: Any, **kwargs: Any) -> Any:
    """`registry[name](*args, **kwargs)` after checking the keywords: ValueError names the bad ones and the accepted."""
    bad, accepted = registry.check_kwargs(name, kwargs, skip=len(args))
    if bad:
        raise ValueError(f"{registry.kind} {name!r} does not take {bad}; it takes {accepted}")
    fn: Callable[..., Any] = registry[name]
    return fn(*args, **kwargs)
