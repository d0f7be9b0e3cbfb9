"""Spans for tools (``dspy.Tool``), retrievers (``dspy.Retrieve``, ``dspy.retrievers.*``) and embedders."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.lm import split_model
from dspy_otel.instrumentation.modules import call_inputs
from dspy_otel.instrumentation.tracing import ActiveCall, Handler

FINISH_TOOL = "finish"


class ToolHandler(Handler):
    """``Tool.__call__`` / ``acall``: ``execute_tool {name}``; ReAct's ``finish`` is marked ``dspy.tool.is_finish``."""

    span_type = attr.SpanType.TOOL

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"execute_tool {getattr(instance, 'name', None) or type(instance).__name__}"

    def on_start(self, call: ActiveCall) -> None:
        span, tool, telemetry, config = call.span, call.instance, self.telemetry, self.telemetry.config
        name = getattr(tool, "name", None) or type(tool).__name__
        if name == FINISH_TOOL:
            span.set_attribute(attr.DSPY_TOOL_IS_FINISH, True)
        if config.gen_ai:
            span.set_attribute(attr.GEN_AI_OPERATION_NAME, attr.OPERATION_EXECUTE_TOOL)
            span.set_attribute(attr.GEN_AI_TOOL_NAME, name)
            span.set_attribute(attr.GEN_AI_TOOL_TYPE, "function")
            if getattr(tool, "desc", None):
                span.set_attribute(attr.GEN_AI_TOOL_DESCRIPTION, str(tool.desc)[:1024])
        if config.openinference:
            span.set_attribute(attr.TOOL_NAME, name)
        if config.captures_content:
            telemetry.record_io(span, "input", call.kwargs)
            if config.gen_ai:
                telemetry.record_content(call, attr.GEN_AI_TOOL_CALL_ARGUMENTS, call.kwargs)

    def on_end(self, call: ActiveCall, result: Any) -> None:
        telemetry = self.telemetry
        telemetry.record_io(call.span, "output", result)
        if telemetry.config.captures_content and telemetry.config.gen_ai:
            telemetry.record_content(call, attr.GEN_AI_TOOL_CALL_RESULT, result)
            telemetry.emit_content_event(call)


class RetrieverHandler(Handler):
    """``dspy.Retrieve.__call__`` and ``dspy.retrievers.Embeddings.__call__``: RETRIEVER spans."""

    span_type = attr.SpanType.RETRIEVER

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return type(instance).__name__

    def on_start(self, call: ActiveCall) -> None:
        k = call.kwargs.get("k", getattr(call.instance, "k", None))
        if isinstance(k, int):
            call.span.set_attribute(attr.DSPY_RETRIEVER_K, k)
        self.telemetry.record_io(call.span, "input", call_inputs(call.args, call.kwargs))

    def on_end(self, call: ActiveCall, result: Any) -> None:
        self.telemetry.record_io(call.span, "output", result)


class EmbedderHandler(Handler):
    """``dspy.Embedder.__call__`` / ``acall``: ``embeddings {model}``."""

    span_type = attr.SpanType.EMBEDDING

    def span_kind(self, instance: Any) -> SpanKind:
        return SpanKind.CLIENT if isinstance(getattr(instance, "model", None), str) else SpanKind.INTERNAL

    def _model(self, instance: Any) -> tuple[str | None, str]:
        model = getattr(instance, "model", None)
        return split_model(model) if isinstance(model, str) else (None, getattr(model, "__name__", type(model).__name__))

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"{attr.OPERATION_EMBEDDINGS} {self._model(instance)[1]}"

    def on_start(self, call: ActiveCall) -> None:
        span, telemetry = call.span, self.telemetry
        provider, model = self._model(call.instance)
        if telemetry.config.gen_ai:
            span.set_attribute(attr.GEN_AI_OPERATION_NAME, attr.OPERATION_EMBEDDINGS)
            span.set_attribute(attr.GEN_AI_REQUEST_MODEL, model)
            if provider:
                span.set_attribute(attr.GEN_AI_PROVIDER_NAME, provider)
        telemetry.record_io(span, "input", call_inputs(call.args, call.kwargs))

    def on_end(self, call: ActiveCall, result: Any) -> None:
        shape = getattr(result, "shape", None)
        if shape is not None:
            self.telemetry.record_io(call.span, "output", {"shape": list(shape)})
