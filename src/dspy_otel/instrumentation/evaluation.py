"""Parent spans for ``dspy.Evaluate`` runs and optimizer ``compile()`` calls, covering all they run."""

from __future__ import annotations

from typing import Any

from opentelemetry import context

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.tracing import ActiveCall, Handler, current_call

COMPILE_KEY = context.create_key("dspy_otel.compile")


class EvaluateHandler(Handler):
    """``Evaluate.__call__``: an EVALUATOR span with example count, threads and score."""

    span_type = attr.SpanType.EVALUATOR

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return type(instance).__name__

    def on_start(self, call: ActiveCall) -> None:
        span, evaluate, kwargs = call.span, call.instance, call.kwargs
        devset = kwargs.get("devset") or getattr(evaluate, "devset", None) or ()
        span.set_attribute(attr.DSPY_EVALUATE_NUM_EXAMPLES, len(devset))
        threads = kwargs.get("num_threads") or getattr(evaluate, "num_threads", None)
        if isinstance(threads, int):
            span.set_attribute(attr.DSPY_EVALUATE_NUM_THREADS, threads)
        program = kwargs.get("program", call.args[0] if call.args else None)
        if program is not None:
            span.set_attribute(attr.DSPY_MODULE_CLASS, type(program).__qualname__)

    def on_end(self, call: ActiveCall, result: Any) -> None:
        score = getattr(result, "score", result if isinstance(result, (int, float)) else None)
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            call.span.set_attribute(attr.DSPY_EVALUATE_SCORE, float(score))
        self.telemetry.record_io(call.span, "output", {"score": score})


class CompileHandler(Handler):
    """``Teleprompter.compile`` of each optimizer class: one CHAIN span per optimization."""

    context_key = COMPILE_KEY
    span_type = attr.SpanType.CHAIN

    def skip(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        outer = current_call(COMPILE_KEY)
        return outer is not None and outer.instance is instance

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"{type(instance).__name__}.compile"

    def on_start(self, call: ActiveCall) -> None:
        span = call.span
        span.set_attribute(attr.DSPY_OPTIMIZER_CLASS, type(call.instance).__qualname__)
        trainset = call.kwargs.get("trainset")
        if trainset is not None:
            span.set_attribute(attr.DSPY_TRAINSET_SIZE, len(trainset))
        student = call.kwargs.get("student", call.args[0] if call.args else None)
        if student is not None:
            span.set_attribute(attr.DSPY_MODULE_CLASS, type(student).__qualname__)
