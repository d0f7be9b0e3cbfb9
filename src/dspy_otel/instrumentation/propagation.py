"""Carrying the caller's trace into DSPy's worker threads (``dspy.Parallel``, ``Module.batch``, ``Evaluate``).

``ParallelExecutor.execute(function, data)`` runs ``function`` on pool threads that start with an
empty context; we hand it a function that runs inside the caller's OpenTelemetry context instead.
"""

from __future__ import annotations

import functools
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
