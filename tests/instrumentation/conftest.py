"""An instrumented DSPy with an in-memory span pipeline, and helpers to read span trees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dspy_otel.instrumentation import DSPyInstrumentor


class Spans:
    """Finished spans with tree helpers."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    @property
    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def clear(self) -> None:
        self.exporter.clear()

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name.startswith(prefix)]

    def one(self, prefix: str) -> ReadableSpan:
        found = self.named(prefix)
        assert len(found) == 1, f"expected one span named {prefix!r}, got {[s.name for s in self.all]}"
        return found[0]

    def roots(self) -> list[ReadableSpan]:
        return [s for s in self.all if s.parent is None]

    def trace_ids(self) -> set[int]:
        return {s.context.trace_id for s in self.all}

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        kids = [s for s in self.all if s.parent is not None and s.parent.span_id == span.context.span_id]
        return sorted(kids, key=lambda s: s.start_time)

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        return next(s for s in self.all if s.context.span_id == span.parent.span_id)

    def tree(self, span: ReadableSpan | None = None) -> Any:
        """``(name, [children...])`` for ``span``, or a list of trees for all roots."""
        if span is None:
            return [self.tree(root) for root in sorted(self.roots(), key=lambda s: s.start_time)]
        return (span.name, [self.tree(child) for child in self.children(span)])

    def text(self) -> str:
        """Every attribute and event value of every span, for leak checks."""
        parts = []
        for s in self.all:
            parts.append(s.name)
            parts.extend(f"{k}={v}" for k, v in s.attributes.items())
            for event in s.events:
                parts.extend(f"{k}={v}" for k, v in event.attributes.items())
            parts.append(str(s.status.description))
        return "\n".join(parts)


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def instrument(tracer_provider: TracerProvider, metric_reader: InMemoryMetricReader) -> Iterator[Any]:
    """``instrument(**kwargs)`` instruments DSPy (content capture on unless given); undone after the test."""
    instrumentor = DSPyInstrumentor()

    def apply(**kwargs: Any) -> DSPyInstrumentor:
        kwargs.setdefault("tracer_provider", tracer_provider)
        kwargs.setdefault("meter_provider", MeterProvider(metric_readers=[metric_reader]))
        kwargs.setdefault("capture_content", True)
        instrumentor.instrument(**kwargs)
        return instrumentor

    yield apply
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter, instrument: Any) -> Spans:
    """Instrumented DSPy (content on) and its finished spans."""
    instrument()
    return Spans(span_exporter)


@pytest.fixture
def lm(make_lm: Any) -> Any:
    import dspy

    model = make_lm()
    with dspy.context(lm=model, adapter=None):
        yield model
