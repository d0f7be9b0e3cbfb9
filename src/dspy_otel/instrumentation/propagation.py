"""Carrying the caller's trace into DSPy's worker threads (``dspy.Parallel``, ``Module.batch``, ``Evaluate``,
``Unbatchify``).

``ParallelExecutor.execute(function, data)`` runs ``function`` on pool threads that start with an
empty context; we hand it a function that runs inside the caller's OpenTelemetry context instead.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context


def bind_context(function: Callable[[Any], Any], ctx: context.Context) -> Callable[[Any], Any]:
    """``function`` run with ``ctx`` attached, whatever thread calls it."""

    @functools.wraps(function)
    def in_context(item: Any) -> Any:
        token = context.attach(ctx)
        try:
            return function(item)
        finally:
            context.detach(token)

    return in_context


def executor_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Around ``ParallelExecutor.execute``: the work items run in the caller's context."""
    if args:
        args = (bind_context(args[0], context.get_current()), *args[1:])
    elif "function" in kwargs:
        kwargs = {**kwargs, "function": bind_context(kwargs["function"], context.get_current())}
    return wrapped(*args, **kwargs)


class ContextualBatchFn:
    """Stands in for an ``Unbatchify.batch_fn``: runs each batch in the context of the oldest caller waiting.

    ``Unbatchify`` (used by ``dspy.retrievers.Embeddings``) hands queued items to a batch function on
    its own worker thread; without this, what that function does would start new traces.
    """

    def __init__(self, batch_fn: Callable[[list[Any]], list[Any]]) -> None:
        self.batch_fn = batch_fn
        self._waiting: list[context.Context] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[Any]) -> list[Any]:
        with self._lock:
            ctx = self._waiting[0] if self._waiting else None
        if ctx is None:
            return self.batch_fn(batch)
        token = context.attach(ctx)
        try:
            return self.batch_fn(batch)
        finally:
            context.detach(token)

    def call_waiting(self, call: Callable[[], Any]) -> Any:
        ctx = context.get_current()
        with self._lock:
            self._waiting.append(ctx)
        try:
            return call()
        finally:
            with self._lock:
                self._waiting.remove(ctx)


def unbatchify_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Around ``Unbatchify.__call__``: the batch that serves this call runs in the caller's context."""
    batch_fn = getattr(instance, "batch_fn", None)
    if not isinstance(batch_fn, ContextualBatchFn):
        if batch_fn is None:
            return wrapped(*args, **kwargs)
        batch_fn = instance.batch_fn = ContextualBatchFn(batch_fn)
    return batch_fn.call_waiting(lambda: wrapped(*args, **kwargs))
