"""Spans for adapters: the ``Adapter.__call__`` / ``acall`` pipeline, with ``format`` and ``parse`` as events.

``Adapter.__call__`` is wrapped on the base class (ChatAdapter and friends reach it through
``super()``). DSPy re-decorates ``format`` / ``parse`` on every subclass, so those are wrapped on
each class that defines them, with a guard against nesting through ``super()``. A parse failure is
a ``dspy.adapter.parse_failure`` event and the error of the adapter span; the ChatAdapter →
JSONAdapter fallback is an event on the predictor span.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from opentelemetry import trace

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.content import scrub_text
from dspy_otel.instrumentation.tracing import ActiveCall, Handler, Telemetry, logger

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


class AdapterStepRecorder:
    """``format`` / ``parse`` of an adapter as events on the adapter span, with their duration.

    Their inputs and outputs are already on the neighbouring spans (the formatted messages are the
    LM span's input, the parsed fields the adapter span's output), so events carry what is new: the
    step's duration, the message count, and for a failed parse the error.
    """

    def __init__(self, telemetry: Telemetry, step: str) -> None:
        self.telemetry = telemetry
        self.step = step
        self.event = attr.EVENT_ADAPTER_FORMAT if step == "format" else attr.EVENT_ADAPTER_PARSE
        self._active: contextvars.ContextVar[int | None] = contextvars.ContextVar(f"dspy_otel_{step}", default=None)

    def __call__(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        span = trace.get_current_span()
        if not (self.telemetry.enabled and span.is_recording()) or self._active.get() == id(instance):
            return wrapped(*args, **kwargs)  # untraced, uninstrumented, or super() inside a step
            return wrapped(*args, **kwargs)
        token = self._active.set(id(instance))
        start = time.perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except Exception as error:
            self._record(span, instance, start, None, error)
            raise
        finally:
            self._active.reset(token)
        self._record(span, instance, start, result, None)
        return result

    def _record(self, span: Any, instance: Any, start: float, result: Any, error: BaseException | None) -> None:
        try:
            event = {"dspy.adapter": type(instance).__name__, "dspy.duration_ms": (time.perf_counter() - start) * 1e3}
            if error is not None:
                event["exception.type"] = type(error).__qualname__
                event["exception.message"] = scrub_text(str(error))[:2048]
                span.add_event(attr.EVENT_ADAPTER_PARSE_FAILURE if self.step == "parse" else self.event, event)
                return
            if self.step == "format" and isinstance(result, list):
                event["dspy.messages.count"] = len(result)
            span.add_event(self.event, event)
        except Exception:  # noqa: BLE001
            logger.debug("dspy-otel: could not record adapter %s", self.step, exc_info=True)


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
