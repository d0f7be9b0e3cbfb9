"""Installing and removing wrapt wrappers on classes, so that ``uninstrument()`` restores every original."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import wrapt

from dspy_otel.instrumentation.tracing import Handler, Wrapper, wrapper_for

logger = logging.getLogger("dspy_otel.instrumentation")


class Patcher:
    """Remembers each (class, attribute, original) it replaced; :meth:`restore` puts them all back."""

    def __init__(self) -> None:
        self._patches: list[tuple[type, str, Any, Any]] = []

    def __len__(self) -> int:
        return len(self._patches)

    def wrap(self, owner: type, name: str, wrapper: Wrapper) -> bool:
        """Wrap ``owner.name`` (defined on ``owner`` itself) with a wrapt ``wrapper``; False if not possible."""
        try:
            original = owner.__dict__[name]
        except KeyError:
            logger.debug("dspy-otel: %s has no own attribute %s; not wrapped", owner.__qualname__, name)
            return False
        try:
            patched = wrapt.FunctionWrapper(original, wrapper)
            setattr(owner, name, patched)
        except Exception:  # noqa: BLE001 - a class we cannot patch stays untraced, the app goes on
            logger.debug("dspy-otel: could not wrap %s.%s", owner.__qualname__, name, exc_info=True)
            return False
        self._patches.append((owner, name, original, patched))
        return True

    def trace(self, owner: type, name: str, handler: Handler) -> bool:
        """Trace ``owner.name`` with ``handler`` (an async wrapper for coroutine methods)."""
        method = owner.__dict__.get(name)
        if method is None:
            return False
        return self.wrap(owner, name, wrapper_for(handler, getattr(method, "__func__", method)))

    def trace_hierarchy(self, base: type, name: str, handler: Handler, include: Callable[[type], bool] = bool) -> int:
        """Trace ``name`` on ``base`` and every loaded subclass that defines it itself; returns how many."""
        return sum(self.trace(cls, name, handler) for cls in _defining(base, name) if include(cls))

    def wrap_hierarchy(self, base: type, name: str, wrapper: Wrapper) -> int:
        """Wrap ``name`` on ``base`` and every loaded subclass that defines it itself; returns how many."""
        return sum(self.wrap(cls, name, wrapper) for cls in _defining(base, name))

    def restore(self) -> None:
        for owner, name, original, patched in reversed(self._patches):
            try:
                if owner.__dict__.get(name) is patched:
                    setattr(owner, name, original)
            except Exception:  # noqa: BLE001
                logger.debug("dspy-otel: could not restore %s.%s", owner.__qualname__, name, exc_info=True)
        self._patches.clear()


def _defining(base: type, name: str) -> list[type]:
    return [cls for cls in (base, *all_subclasses(base)) if name in cls.__dict__]


def all_subclasses(base: type) -> list[type]:
    seen: dict[type, None] = {}
    stack = list(type.__subclasses__(base))
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen[cls] = None
            stack.extend(type.__subclasses__(cls))
    return list(seen)
