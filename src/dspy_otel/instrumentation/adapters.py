"""Spans for adapters: the ``Adapter.__call__`` / ``acall`` pipeline, with ``format`` and ``parse`` children.

``Adapter.__call__`` is wrapped on the base class (ChatAdapter and friends reach it through
``super()``). DSPy re-decorates ``format`` / ``parse`` on every subclass, so those are wrapped on
each class that defines them, with a guard against nesting through ``super()``. A parse failure is
an error on the parse span; the ChatAdapter → JSONAdapter fallback is an event on the predictor span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, trace

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.tracing import ActiveCall, Handler, current_call, logger

ADAPTER_STEP_KEY = context.create_key("dspy_otel.adapter_step")


class AdapterHandler(Handler):
    """``Adapter.__call__`` / ``acall``: one PARSER span per adapter run."""

    span_type = attr.SpanType.PARSER

    def __init__(self, telemetry: Any) -> None:
        super().__init__(telemetry)
        self._static: dict[type, dict[str, Any]] = {}

    def static_attributes(self, instance: Any) -> dict[str, Any]:
        found = self._static.get(type(instance))
        if found is None:
            found = self._static[type(instance)] = {**(self._type_attributes or {}),
                                                    attr.DSPY_ADAPTER: type(instance).__name__}
        return found

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return type(instance).__name__

    def on_start(self, call: ActiveCall) -> None:
        span = call.span
        signature = call.kwargs.get("signature", call.args[2] if len(call.args) > 2 else None)
        if signature is not None:
            span.set_attribute(attr.DSPY_SIGNATURE_NAME, getattr(signature, "__name__", "Signature"))
        inputs = call.kwargs.get("inputs", call.args[4] if len(call.args) > 4 else None)
        if inputs is not None:
            self.telemetry.record_io(span, "input", inputs)

    def on_end(self, call: ActiveCall, result: Any) -> None:
        self.telemetry.record_io(call.span, "output", result)


class AdapterStepHandler(Handler):
    """``format`` or ``parse`` of an adapter, as a PARSER child span."""

    context_key = ADAPTER_STEP_KEY
    span_type = attr.SpanType.PARSER

    def __init__(self, telemetry: Any, step: str) -> None:
        super().__init__(telemetry)
        self.step = step

    def skip(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        outer = current_call(ADAPTER_STEP_KEY)
        return outer is not None and outer.instance is instance and outer.handler is self

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"{type(instance).__name__}.{self.step}"

    def on_start(self, call: ActiveCall) -> None:
        if self.step == "parse":
            completion = call.kwargs.get("completion", call.args[1] if len(call.args) > 1 else None)
            self.telemetry.record_io(call.span, "input", {"completion": completion})
        else:
            inputs = call.kwargs.get("inputs", call.args[2] if len(call.args) > 2 else None)
            demos = call.kwargs.get("demos", call.args[1] if len(call.args) > 1 else None)
            self.telemetry.record_io(call.span, "input", {"inputs": inputs, "demos_count": len(demos or ())})

    def on_end(self, call: ActiveCall, result: Any) -> None:
        if self.step == "format" and isinstance(result, list):
            result = {"messages": len(result)}  # the messages themselves are the LM span's input
        self.telemetry.record_io(call.span, "output", result)

    def on_error(self, call: ActiveCall, error: BaseException) -> None:
        if self.step == "parse":
            parent = trace.get_current_span()
            if parent.is_recording():
                parent.add_event(attr.EVENT_ADAPTER_PARSE_FAILURE, {
                    "dspy.adapter": type(call.instance).__name__,
                    "exception.type": type(error).__name__,
                })


def fallback_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Around ``ChatAdapter._make_json_adapter_fallback``: marks the fallback on the current (predictor) span."""
    fallback = wrapped(*args, **kwargs)
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(attr.EVENT_ADAPTER_FALLBACK, {
                "dspy.adapter.from": type(instance).__name__,
                "dspy.adapter.to": type(fallback).__name__,
            })
    except Exception:  # noqa: BLE001
        logger.debug("dspy-otel: could not record the adapter fallback", exc_info=True)
    return fallback
