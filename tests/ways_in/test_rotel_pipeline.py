"""OpenTelemetry SDK spans → OTLP/HTTP → rotel (collector-config/rotel/*.env) → a real ``mlflow server``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

import dspy_otel
from dspy_otel.instrumentation import attributes as attr
from dspy_otel.testing.mlflow_server import MlflowServer
from dspy_otel.testing.rotel import RotelCollector

pytestmark = pytest.mark.integration


@pytest.fixture
def provider_for() -> Iterator[Callable[[str], TracerProvider]]:
    """``provider_for(url)``: a private SDK pipeline exporting OTLP/HTTP protobuf to ``url``."""
    providers: list[TracerProvider] = []

    def make(url: str) -> TracerProvider:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=30)))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.shutdown()


def emit_trace(provider: TracerProvider, question: str, fail: bool = False) -> str:
    """A three-span trace shaped like a DSPy call (module → predictor → LM); returns its hex trace ID."""
    tracer = provider.get_tracer("ways-in-test")
    with tracer.start_as_current_span("QA.forward") as root:
        root.set_attribute(attr.MLFLOW_SPAN_TYPE, attr.SpanType.CHAIN)
        root.set_attribute(attr.MLFLOW_SPAN_INPUTS, json.dumps({"question": question}))
        with tracer.start_as_current_span("Predict(QA)") as predict:
            predict.set_attribute(attr.MLFLOW_SPAN_TYPE, attr.SpanType.LLM)
            with tracer.start_as_current_span("chat stub-model") as chat:
                chat.set_attribute(attr.MLFLOW_SPAN_TYPE, attr.SpanType.CHAT_MODEL)
                chat.set_attribute(attr.GEN_AI_INPUT_MESSAGES, json.dumps([{"role": "user", "content": question}]))
                chat.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, 12)
                chat.add_event("gen_ai.choice", {attr.GEN_AI_OUTPUT_MESSAGES: "an answer"})
        if fail:  # what a DSPy error looks like: it propagates, so every span ends in ERROR
            root.set_status(Status(StatusCode.ERROR, "LM call failed"))
        root.set_attribute(attr.MLFLOW_SPAN_OUTPUTS, json.dumps({"answer": f"answer to {question}"}))
    return format(root.get_span_context().trace_id, "032x")


def stored_ids(traces: list) -> set[str]:
    return {t.info.trace_id.removeprefix("tr-") for t in traces}


def test_spans_arrive_complete_through_rotel(rotel_to_mlflow: Callable[..., RotelCollector],
                                             provider_for: Callable[[str], TracerProvider],
                                             mlflow_server: MlflowServer, experiment_id: str,
                                             wait_for_traces: Callable[..., list]) -> None:
    rotel = rotel_to_mlflow()
    provider = provider_for(rotel.traces_url)
    sent = {emit_trace(provider, f"question {i}", fail=i == 2) for i in range(3)}
    assert provider.force_flush()

    traces = wait_for_traces(mlflow_server.url, experiment_id, 3, min_spans=3)
    assert stored_ids(traces) == sent
    for trace in traces:
        spans = {s.name: s for s in trace.data.spans}
        assert set(spans) == {"QA.forward", "Predict(QA)", "chat stub-model"}
        assert spans["QA.forward"].parent_id is None
        assert spans["Predict(QA)"].parent_id == spans["QA.forward"].span_id
        assert spans["chat stub-model"].parent_id == spans["Predict(QA)"].span_id
        assert [spans[n].span_type for n in ("QA.forward", "Predict(QA)", "chat stub-model")] == ["CHAIN", "LLM", "CHAT_MODEL"]
        assert spans["QA.forward"].inputs["question"].startswith("question ")
        assert spans["QA.forward"].outputs["answer"].startswith("answer to question ")
        assert spans["chat stub-model"].attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12
    states = sorted(t.info.state.value for t in traces)
    assert states == ["ERROR", "OK", "OK"]


def test_redaction_overlay_deletes_content_but_keeps_structure(
        rotel_to_mlflow: Callable[..., RotelCollector], provider_for: Callable[[str], TracerProvider],
        mlflow_server: MlflowServer, experiment_id: str, wait_for_traces: Callable[..., list]) -> None:
    rotel = rotel_to_mlflow("redact-content.env")
    provider = provider_for(rotel.traces_url)
    sent = emit_trace(provider, "my private question")
    assert provider.force_flush()

    (trace,) = wait_for_traces(mlflow_server.url, experiment_id, 1, min_spans=3)
    assert stored_ids([trace]) == {sent}
    spans = {s.name: s for s in trace.data.spans}
    assert spans["QA.forward"].inputs is None and spans["QA.forward"].outputs is None
    assert spans["QA.forward"].span_type == "CHAIN"
    chat = spans["chat stub-model"]
    assert attr.GEN_AI_INPUT_MESSAGES not in chat.attributes
    assert chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert chat.attributes["dspy_otel.redacted.count"] == 2  # the attribute and the event's
    assert [e.attributes for e in chat.events] == [{}]
    assert "my private question" not in json.dumps(trace.to_dict())


def test_collector_restart_loses_nothing_the_app_handed_over(
        rotel_to_mlflow: Callable[..., RotelCollector], provider_for: Callable[[str], TracerProvider],
        mlflow_server: MlflowServer, experiment_id: str, wait_for_traces: Callable[..., list]) -> None:
    rotel = rotel_to_mlflow()
    provider = provider_for(rotel.traces_url)

    # Accepted by rotel, then rotel is stopped at once: it flushes what it holds on SIGTERM.
    before = {emit_trace(provider, f"before {i}") for i in range(3)}
    assert provider.force_flush()
    rotel.stop()

    # Ended while the collector is down: the SDK exporter retries with backoff until it is back.
    during = {emit_trace(provider, f"during {i}") for i in range(3)}
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(provider.force_flush(60_000)))
    flusher.start()
    time.sleep(1.5)
    rotel.start()
    flusher.join(60)
    assert flushed == [True]

    after = {emit_trace(provider, f"after {i}") for i in range(3)}
    assert provider.force_flush()

    traces = wait_for_traces(mlflow_server.url, experiment_id, 9, min_spans=3)
    assert stored_ids(traces) == before | during | after
    assert all(len(t.data.spans) == 3 for t in traces)


def test_dspy_program_through_rotel_arrives_complete(
        rotel_to_mlflow: Callable[..., RotelCollector], program: ModuleType, mlflow_server: MlflowServer,
        experiment_id: str, wait_for_traces: Callable[..., list],
        check_program_traces: Callable[..., None]) -> None:
    rotel = rotel_to_mlflow()
    session = dspy_otel.autolog(otlp_endpoint=rotel.http_endpoint)  # the collector adds the experiment header
    try:
        program.configure_from_env()
        program.run()
        assert session.flush()
        assert session.dropped_spans == 0
    finally:
        dspy_otel.autolog(disable=True)

    check_program_traces(wait_for_traces(mlflow_server.url, experiment_id, 3, min_spans=4))
