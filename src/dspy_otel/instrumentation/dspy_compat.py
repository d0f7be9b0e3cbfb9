"""Everything that depends on DSPy's internal layout, behind small shims (tested: DSPy 3.4).

- :func:`dspy_classes` finds the classes we wrap, tolerating ones a DSPy version lacks;
- :func:`response_info` reads response metadata from what DSPy finalizes for an LM call: a
  ``dspy.clients.call_result.CallResult`` in DSPy 3.4 (``usage``, ``cost``, ``cache_hit``,
  ``response_model``, lm15 ``responses`` or a LiteLLM ``raw`` response), or a LiteLLM response;
- :data:`RESULT_HOOKS` names the functions whose calls hand that result over.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, NamedTuple

# (module, function, index of the LM argument, index of the result argument) receiving each LM call's
# result: DSPy 3.4's ``execution.finalize(lm, call, result)``.
RESULT_HOOKS: tuple[tuple[str, str, int, int], ...] = (("dspy.clients.execution", "finalize", 0, 2),)


class DSPyClasses(NamedTuple):
    Module: type
    Predict: type
    ReAct: type | None
    BaseLM: type
    LM: type | None
    Adapter: type
    ChatAdapter: type | None
    Tool: type | None
    Retrieve: type | None
    Embeddings: type | None
    Embedder: type | None
    Evaluate: type | None
    Teleprompter: type | None
    ParallelExecutor: type | None
    Unbatchify: type | None


def _find(path: str) -> Any:
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None


def dspy_classes() -> DSPyClasses:
    """Import DSPy (lazily, at instrument time) and locate what we wrap."""
    import dspy

    return DSPyClasses(
        Module=dspy.Module,
        Predict=dspy.Predict,
        ReAct=getattr(dspy, "ReAct", None),
        BaseLM=dspy.BaseLM,
        LM=getattr(dspy, "LM", None),
        Adapter=dspy.Adapter,
        ChatAdapter=getattr(dspy, "ChatAdapter", None),
        Tool=getattr(dspy, "Tool", None),
        Retrieve=getattr(dspy, "Retrieve", None),
        Embeddings=_find("dspy.retrievers.Embeddings"),
        Embedder=getattr(dspy, "Embedder", None),
        Evaluate=getattr(dspy, "Evaluate", None),
        Teleprompter=_find("dspy.teleprompt.Teleprompter"),
        ParallelExecutor=_find("dspy.utils.parallelizer.ParallelExecutor"),
        Unbatchify=_find("dspy.utils.unbatchify.Unbatchify"),
    )


@dataclass(frozen=True)
class ResponseInfo:
    response_id: str | None = None
    model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cost: float | None = None
    cache_hit: bool | None = None


def _value(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def response_info(result: Any) -> ResponseInfo:
    """Response metadata from a DSPy ``CallResult`` or a LiteLLM/OpenAI-shaped response; empty if unknown."""
    if result is None:
        return ResponseInfo()
    responses = _value(result, "responses") or ()
    raw = _value(result, "raw")
    source = responses[0] if responses else (raw if raw is not None else result)
    usage = _value(result, "usage")
    if not usage:
        usage = _value(source, "usage")
    input_tokens = _int(_value(usage, "prompt_tokens", _value(usage, "input_tokens")))
    output_tokens = _int(_value(usage, "completion_tokens", _value(usage, "output_tokens")))
    details = _value(usage, "prompt_tokens_details")
    cached = _int(_value(details, "cached_tokens")) if details else _int(_value(usage, "cache_read_tokens"))
    if responses:
        reasons = tuple(str(_value(r, "finish_reason")) for r in responses if _value(r, "finish_reason"))
    else:
        reasons = tuple(str(_value(c, "finish_reason")) for c in (_value(source, "choices") or ())
                        if _value(c, "finish_reason"))
    cost = _value(result, "cost")
    cache_hit = _value(result, "cache_hit")
    return ResponseInfo(
        response_id=_value(source, "id") if isinstance(_value(source, "id"), str) else None,
        model=_value(result, "response_model") or (_value(source, "model") if isinstance(_value(source, "model"), str)
                                                   else None),
        finish_reasons=reasons,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached,
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
        cache_hit=bool(cache_hit) if cache_hit is not None else None,
    )
