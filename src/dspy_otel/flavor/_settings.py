"""A program's LMs and adapter: captured at save time, attached to the program at load time.

Loading never touches the global ``dspy.settings``: LMs are set on each predictor and a saved
adapter is applied by the program's own ``forward`` through ``dspy.context``.
"""

from __future__ import annotations

import functools
from typing import Any

from mlflow.exceptions import MlflowException

from dspy_otel.flavor._imports import import_path, resolve
from dspy_otel.flavor._lm import lm_from_record, lm_to_record


def capture_settings(program: Any) -> dict[str, Any]:
    """Per-predictor LMs, the current default LM (when some predictor relies on it) and the adapter."""
    import dspy

    predictors = program.named_predictors()
    own = {name: lm_to_record(p.lm) for name, p in predictors if p.lm is not None}
    needs_default = any(p.lm is None for _, p in predictors)
    default = dspy.settings.lm if needs_default else None
    adapter = bound_adapter(program) or dspy.settings.adapter
    return {
        "lm": lm_to_record(default) if default is not None else None,
        "predictor_lms": own,
        "adapter": _adapter_record(adapter) if adapter is not None else None,
    }


def _adapter_record(adapter: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"class": import_path(type(adapter), "adapter class")}
    if getattr(adapter, "use_native_function_calling", False):
        record["use_native_function_calling"] = True
    return record


def build_adapter(record: dict[str, Any] | None) -> Any:
    import dspy

    if record is None:
        return None
    cls = resolve(record["class"], "adapter class")
    if not (isinstance(cls, type) and issubclass(cls, dspy.Adapter)):
        raise MlflowException(f"'{record['class']}' is not a dspy.Adapter subclass; refusing to build it.")
    kwargs = {"use_native_function_calling": True} if record.get("use_native_function_calling") else {}
    return cls(**kwargs)


def attach_settings(program: Any, settings: dict[str, Any]) -> Any:
    """Set the saved LMs on the predictors; bind a saved adapter to the program's ``forward``."""
    default = lm_from_record(settings["lm"]) if settings.get("lm") else None
    own = settings.get("predictor_lms") or {}
    for name, predictor in program.named_predictors():
        predictor.lm = lm_from_record(own[name]) if name in own else default
    adapter = build_adapter(settings.get("adapter"))
    if adapter is not None:
        bind_adapter(program, adapter)
    return program


def _call_with_adapter(adapter: Any, method: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
    import dspy

    with dspy.context(adapter=adapter):
        return method(program, *args, **kwargs)


async def _acall_with_adapter(adapter: Any, method: Any, program: Any, *args: Any, **kwargs: Any) -> Any:
    import dspy

    with dspy.context(adapter=adapter):
        return await method(program, *args, **kwargs)


def bind_adapter(program: Any, adapter: Any) -> None:
    """Make ``program`` run with ``adapter`` (instance-level ``forward``/``aforward``; deep-copies follow)."""
    cls = type(program)
    program.forward = functools.partial(_call_with_adapter, adapter, cls.forward, program)
    if hasattr(cls, "aforward"):
        program.aforward = functools.partial(_acall_with_adapter, adapter, cls.aforward, program)


def bound_adapter(program: Any) -> Any:
    """The adapter :func:`bind_adapter` attached to ``program``, if any."""
    forward = program.__dict__.get("forward")
    return forward.args[0] if isinstance(forward, functools.partial) else None
