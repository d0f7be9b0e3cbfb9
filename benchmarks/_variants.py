"""The tracing setups compared by ``overhead.py``; each is installed once, in its own process.

Every OpenTelemetry-based setup (ours, the peers and the bare-span floor) uses the same SDK
pipeline: a ``TracerProvider`` with one span processor (batch by default) in front of an exporter
that only counts spans, so what differs is the instrumentation and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

Call = Callable[[], Any]

# name → what it is (also the order of the printed tables)
VARIANTS: dict[str, str] = {
    "baseline": "no tracing",
    "mlflow": "mlflow.dspy.autolog() (sqlite tracking store)",
    "openinference": "openinference-instrumentation-dspy",
    "otel-genai": "opentelemetry-instrumentation-genai-dspy (content SPAN_ONLY)",
    "ours-content-on": "dspy-otel, capture_content=True",
    "ours-content-off": "dspy-otel, capture_content=False",
    "ours-always-off": "dspy-otel, content on, ALWAYS_OFF sampler",
    "ours-suppressed": "dspy-otel, content on, inside suppress_instrumentation()",
    "floor": "bare nested OTel SDK spans, as many as ours-content-on makes",
}


class CountingExporter(SpanExporter):
    """Drops spans, counting them."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


class Variant:
    """One installed setup: how to make a timed call, what to do around a block, how to count spans."""

    def __init__(self) -> None:
        self.tracer_provider: TracerProvider | None = None
        self.exporter: CountingExporter | None = None

    def prepare(self, call: Call, span_count: int) -> Call:
        """The per-call function to time (``span_count`` is only used by the floor)."""
        return call

    def block(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around each timed block."""
        return contextlib.nullcontext()

    def flush(self) -> None:
        """Finish background export work, outside the timed region."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()

    def count_spans(self, call: Call) -> int | None:
        """How many spans one call makes (``None``: no spans to count)."""
        if self.exporter is None:
            return None
        self.flush()
        before = self.exporter.count
        with self.block():
            call()
        self.flush()
        return self.exporter.count - before


def otel_pipeline(variant: Variant, processor: str, sampler: Any = None) -> TracerProvider:
    exporter = CountingExporter()
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter) if processor == "batch" else SimpleSpanProcessor(exporter))
    variant.tracer_provider, variant.exporter = provider, exporter
    return provider


class Ours(Variant):
    def __init__(self, processor: str, capture_content: bool, sampler: Any = None, suppressed: bool = False):
        super().__init__()
        from dspy_otel.instrumentation import DSPyInstrumentor

        provider = otel_pipeline(self, processor, sampler)
        DSPyInstrumentor().instrument(tracer_provider=provider, capture_content=capture_content)
        self.suppressed = suppressed

    def block(self) -> contextlib.AbstractContextManager[Any]:
        if not self.suppressed:
            return contextlib.nullcontext()
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        return suppress_instrumentation()


class OpenInference(Variant):
    def __init__(self, processor: str):
        super().__init__()
        from openinference.instrumentation.dspy import DSPyInstrumentor

        DSPyInstrumentor().instrument(tracer_provider=otel_pipeline(self, processor))


class OtelGenAI(Variant):
    def __init__(self, processor: str):
        super().__init__()
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
        from opentelemetry.instrumentation.genai.dspy import DSPyInstrumentor

        DSPyInstrumentor().instrument(tracer_provider=otel_pipeline(self, processor))


class Floor(Variant):
    """The DSPy call nested inside ``span_count`` bare spans: start, make current, end; no attributes."""

    def __init__(self, processor: str):
        super().__init__()
        self.tracer = otel_pipeline(self, processor).get_tracer("benchmarks.floor")

    def prepare(self, call: Call, span_count: int) -> Call:
        tracer = self.tracer

        def nested() -> Any:
            spans, tokens = [], []
            for _ in range(span_count):
                span = tracer.start_span("span")
                spans.append(span)
                tokens.append(context.attach(trace.set_span_in_context(span)))
            try:
                return call()
            finally:
                for span, token in zip(reversed(spans), reversed(tokens)):
                    context.detach(token)
                    span.end()

        return nested

    def count_spans(self, call: Call) -> int | None:
        return None  # the floor makes exactly as many as it is told


class Mlflow(Variant):
    """MLflow's own DSPy tracing, logging traces to a sqlite tracking store in a temporary directory."""

    def __init__(self, processor: str):
        super().__init__()
        import mlflow

        self._tmp = tempfile.TemporaryDirectory(prefix="dspy-otel-bench-")
        mlflow.set_tracking_uri(f"sqlite:///{self._tmp.name}/mlflow.db")
        # trace artifacts would otherwise land in ./mlruns
        mlflow.set_experiment(experiment_id=mlflow.create_experiment(
            "overhead", artifact_location=Path(self._tmp.name, "artifacts").as_uri()))
        mlflow.dspy.autolog()
        self.mlflow = mlflow

    def flush(self) -> None:
        self.mlflow.flush_trace_async_logging()

    def count_spans(self, call: Call) -> int | None:
        call()
        self.flush()
        trace_id = self.mlflow.get_last_active_trace_id()
        return len(self.mlflow.get_trace(trace_id).data.spans) if trace_id else 0


def install(name: str, processor: str) -> Variant:
    """Install the named setup in this process (peers patch DSPy globally: one setup per process)."""
    factories: dict[str, Callable[[], Variant]] = {
        "baseline": Variant,
        "mlflow": lambda: Mlflow(processor),
        "openinference": lambda: OpenInference(processor),
        "otel-genai": lambda: OtelGenAI(processor),
        "ours-content-on": lambda: Ours(processor, capture_content=True),
        "ours-content-off": lambda: Ours(processor, capture_content=False),
        "ours-always-off": lambda: Ours(processor, capture_content=True, sampler=ALWAYS_OFF),
        "ours-suppressed": lambda: Ours(processor, capture_content=True, suppressed=True),
        "floor": lambda: Floor(processor),
    }
    return factories[name]()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[Any]:
    """Keep the worker's protocol stream clean: yields the real stdout, points fd 1 at stderr meanwhile."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    try:
        yield protocol
    finally:
        protocol.close()
