"""The span lifecycle every wrapper shares, and the sync/async wrapt drivers built on it.

A :class:`Handler` describes one concern (a module call, an LM call, a tool call, ...): its span
name and kind, and what to record at start and end. :func:`wrapper_for` turns a handler into a
wrapt wrapper for a sync or async method. Everything here protects the user's call: an error in
our code is logged at debug level and the call proceeds untraced; the user's own result or
exception passes through untouched.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.config import InstrumentationConfig
from dspy_otel.instrumentation.content import dumps, scrub_text, to_jsonable, truncate

logger = logging.getLogger("dspy_otel.instrumentation")

_CONTENT_EVENT = "content_event"

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class Telemetry:
    """What every handler needs: the tracer, the settings, and the metric instruments (or None)."""

    def __init__(self, tracer: trace.Tracer, config: InstrumentationConfig, metrics: Any = None) -> None:
        self.tracer = tracer
        self.config = config
        self.metrics = metrics
        # False after uninstrument(): wrappers that DSPy captured meanwhile (it re-decorates adapter
        # methods in every new subclass) then pass calls straight through.
        self.enabled = True

    def clean(self, value: Any) -> Any:
        """``value`` made JSON-able and redacted, for recording more than once (pass ``clean=True`` then)."""
        return to_jsonable(value, self.config.redact_keys)

    def _dumps(self, value: Any, clean: bool) -> tuple[str, bool]:
        if clean:
            return truncate(json.dumps(value, ensure_ascii=False), self.config.max_content_length)
        return dumps(value, self.config.max_content_length, self.config.redact_keys)

    def record_content(self, call: ActiveCall, key: str, value: Any, clean: bool = False) -> None:
        """GenAI content (messages, tool arguments) as bounded, redacted JSON: a span attribute and/or
        an attribute of the call's content event, as the capture mode says."""
        text, truncated = self._dumps(value, clean)
        if self.config.capture.on_spans:
            call.span.set_attribute(key, text)
        if self.config.capture.on_events:
            call.data.setdefault(_CONTENT_EVENT, {})[key] = text
        if truncated:
            call.span.set_attribute(attr.DSPY_CONTENT_TRUNCATED, True)

    @staticmethod
    def emit_content_event(call: ActiveCall) -> None:
        """The ``gen_ai.client.inference.operation.details`` event with the content gathered for ``call``."""
        content = call.data.get(_CONTENT_EVENT)
        if content:
            call.span.add_event(attr.EVENT_OPERATION_DETAILS, content)

    def record_io(self, span: Span, key_family: str, value: Any, clean: bool = False) -> None:
        """Inputs (``key_family="input"``) or outputs in the MLflow and OpenInference families, if capturing."""
        config = self.config
        if not config.content_on_spans:
            return
        text, truncated = self._dumps(value, clean)
        if config.mlflow:
            span.set_attribute(attr.MLFLOW_SPAN_INPUTS if key_family == "input" else attr.MLFLOW_SPAN_OUTPUTS, text)
        if config.openinference:
            span.set_attribute(attr.INPUT_VALUE if key_family == "input" else attr.OUTPUT_VALUE, text)
            span.set_attribute(attr.INPUT_MIME_TYPE if key_family == "input" else attr.OUTPUT_MIME_TYPE, attr.MIME_JSON)
        if truncated:
            span.set_attribute(attr.DSPY_CONTENT_TRUNCATED, True)

    def span_type_attributes(self, span_type: str) -> dict[str, str]:
        """``mlflow.spanType`` and/or ``openinference.span.kind`` for an MLflow span type."""
        found = {}
        if self.config.mlflow:
            found[attr.MLFLOW_SPAN_TYPE] = span_type
        if self.config.openinference:
            found[attr.OPENINFERENCE_SPAN_KIND] = attr.OPENINFERENCE_KIND[span_type]
        return found


class Handler:
    """One traced concern. Subclasses set ``kind`` and override the hooks they need."""

    kind: SpanKind = SpanKind.INTERNAL
    #: the MLflow span type of every span this handler makes (``None``: decided per instance)
    span_type: str | None = None
    #: a context key set to the active call while the span is current (``None``: not published)
    context_key: str | None = None

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._type_attributes = telemetry.span_type_attributes(self.span_type) if self.span_type else None

    def skip(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """True to run the call untraced (e.g. a nested call that another span of ours already covers)."""
        return False

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        raise NotImplementedError

    def span_kind(self, instance: Any) -> SpanKind:
        return self.kind

    def static_attributes(self, instance: Any) -> Mapping[str, Any] | None:
        """Attributes that depend only on the instance's class and configuration (cache them); given to
        ``start_span`` in one piece."""
        return self._type_attributes

    def on_start(self, call: ActiveCall) -> None:
        """Record request attributes; called only when the span is recording."""

    def on_end(self, call: ActiveCall, result: Any) -> None:
        """Record response attributes; called only when the span is recording."""

    def on_error(self, call: ActiveCall, error: BaseException) -> None:
        """Extra bookkeeping for a failed call (the error itself is recorded for every handler)."""

    #: True for handlers whose ``after`` records metrics, which must run even when the trace is sampled out.
    measures = False

    def after(self, call: ActiveCall, error: BaseException | None) -> None:
        """Runs for every traced call, recording or not (metrics)."""

    def extra_context(self, call: ActiveCall, ctx: context.Context) -> context.Context:
        """Values to publish to nested calls besides the span itself."""
        return ctx


class ActiveCall:
    """One traced call in flight: its span, its arguments, and what handlers gather on the way."""

    __slots__ = ("handler", "span", "instance", "args", "kwargs", "token", "start", "data")

    def __init__(self, handler: Handler, span: Span, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.handler = handler
        self.span = span
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.token: object | None = None
        self.start = time.perf_counter()
        self.data: dict[str, Any] = {}


def begin(handler: Handler, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ActiveCall | None:
    """Start and activate the span for a call; ``None`` means run the call untraced."""
    try:
        if not (handler.telemetry.enabled and is_instrumentation_enabled()):
            return None
        parent = trace.get_current_span()
        parent_context = parent.get_span_context()
        if parent_context.is_valid and not parent_context.trace_flags.sampled and not parent.is_recording():
            return _unsampled(handler, instance, args, kwargs)
        if handler.skip(instance, args, kwargs):
            return None
        span = handler.telemetry.tracer.start_span(handler.name(instance, args, kwargs),
                                                   kind=handler.span_kind(instance),
                                                   attributes=handler.static_attributes(instance))
        call = ActiveCall(handler, span, instance, args, kwargs)
        ctx = trace.set_span_in_context(span)
        if handler.context_key is not None:
            ctx = context.set_value(handler.context_key, call, ctx)
        if span.is_recording():
            try:
                handler.on_start(call)
            except Exception:  # noqa: BLE001
                logger.debug("dspy-otel: on_start failed for %s", type(handler).__name__, exc_info=True)
            ctx = handler.extra_context(call, ctx)
        call.token = context.attach(ctx)
        return call
    except Exception:  # noqa: BLE001
        logger.debug("dspy-otel: could not start a span", exc_info=True)
        return None


def _unsampled(handler: Handler, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ActiveCall | None:
    """Inside a trace the sampler dropped, child spans would be dropped too (every built-in sampler decides
    per trace): make none, and keep only what metrics need."""
    if not handler.measures or handler.telemetry.metrics is None:
        return None
    call = ActiveCall(handler, trace.INVALID_SPAN, instance, args, kwargs)
    if handler.context_key is not None:
        call.token = context.attach(context.set_value(handler.context_key, call))
    return call


def finish(call: ActiveCall, result: Any = None, error: BaseException | None = None) -> None:
    """Record the outcome, end the span and restore the caller's context. Never raises."""
    handler, span = call.handler, call.span
    try:
        if call.token is not None:
            context.detach(call.token)
    except Exception:  # noqa: BLE001
        logger.debug("dspy-otel: context detach failed", exc_info=True)
    try:
        if span.is_recording():
            if error is None:
                handler.on_end(call, result)
            else:
                handler.on_error(call, error)
                record_error(span, error)
        handler.after(call, error)
    except Exception:  # noqa: BLE001
        logger.debug("dspy-otel: recording the outcome failed for %s", type(handler).__name__, exc_info=True)
    finally:
        span.end()


def record_error(span: Span, error: BaseException) -> None:
    """An ERROR status and an ``exception`` event, with credentials scrubbed from message and stack."""
    message = scrub_text(str(error))
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {message}"[:1024]))
    span.set_attribute(attr.ERROR_TYPE, type(error).__qualname__)
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    span.add_event("exception", {
        "exception.type": f"{type(error).__module__}.{type(error).__qualname__}",
        "exception.message": message,
        "exception.stacktrace": scrub_text(stack)[-8192:],
        "exception.escaped": True,
    })


def wrapper_for(handler: Handler, method: Callable[..., Any]) -> Wrapper:
    """A wrapt wrapper tracing ``method`` with ``handler``; async methods get an async wrapper."""

    if inspect.iscoroutinefunction(method):
        async def traced_async(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            call = begin(handler, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                finish(call, error=error)
                raise
            finish(call, result)
            return result

        return traced_async

    def traced(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        call = begin(handler, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            finish(call, error=error)
            raise
        finish(call, result)
        return result

    return traced


def current_call(key: str) -> ActiveCall | None:
    """The active call a handler published under ``key`` in the current context, if any."""
    value = context.get_value(key)
    return value if isinstance(value, ActiveCall) else None
