"""MlflowSpanExporter into a real sqlite MLflow store: conversion, trace info, partial traces, threads."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from dspy_otel.exporters import MlflowContextProcessor, MlflowSpanExporter
from dspy_otel.instrumentation import attributes as attr

from .conftest import SERVICE, mlflow_id, program_trace, recorded_spans


def by_name(trace):
    return {span.name: span for span in trace.data.spans}


def test_program_trace_is_a_complete_mlflow_trace(exporter, client, experiment_id):
    spans = recorded_spans(program_trace)
    assert exporter.export(spans).name == "SUCCESS"
    assert exporter.force_flush(60_000)

    trace = client.get_trace(mlflow_id(spans[0]))
    info = trace.info
    assert info.experiment_id == experiment_id
    assert info.state.value == "OK"
    assert json.loads(info.request_preview) == {"question": "What is 2+2?"}
    assert json.loads(info.response_preview) == {"answer": "answer for: What is 2+2?"}
    assert info.token_usage == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    root = next(s for s in spans if s.parent is None)
    assert info.execution_time_ms == root.end_time // 1_000_000 - root.start_time // 1_000_000  # MLflow: end ms - start ms
    assert info.tags["mlflow.traceName"] == "ChainOfThought"
    assert info.tags["service.name"] == SERVICE

    stored = by_name(trace)
    assert {name: span.span_type for name, span in stored.items()} == {
        "ChainOfThought": "CHAIN", "Predict(question -> answer)": "LLM", "ChatAdapter": "PARSER",
        "chat stub-model": "CHAT_MODEL"}
    for original in spans:
        span = stored[original.name]
        assert span.span_id == f"{original.context.span_id:016x}"
        assert span.parent_id == (f"{original.parent.span_id:016x}" if original.parent else None)
        assert (span.start_time_ns, span.end_time_ns) == (original.start_time, original.end_time)
    chat = stored["chat stub-model"]
    assert chat.inputs == {"messages": [{"role": "user", "content": "What is 2+2?"}]}
    assert chat.get_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS) == 11
    assert chat.get_attribute(attr.GEN_AI_REQUEST_MODEL) == "stub-model"
    assert stored["ChainOfThought"].outputs == {"answer": "answer for: What is 2+2?"}
    assert exporter.exported_spans == 4 and exporter.dropped_spans == 0


def test_search_traces_and_span_type_filter(exporter, sqlite_uri, experiment_id):
    untyped = recorded_spans(lambda tracer: tracer.start_span("just a span").end())
    program = recorded_spans(program_trace)
    exporter.export(untyped + program)
    assert exporter.force_flush(60_000)

    mlflow.set_tracking_uri(sqlite_uri)
    found = mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert {t.info.trace_id for t in found} == {mlflow_id(untyped[0]), mlflow_id(program[0])}
    chat = mlflow.search_traces(locations=[experiment_id], filter_string="span.type = 'CHAT_MODEL'",
                                return_type="list")
    assert [t.info.trace_id for t in chat] == [mlflow_id(program[0])]
    frame = mlflow.search_traces(locations=[experiment_id])
    assert len(frame) == 2


def test_plain_otel_span_without_dspy_attributes_is_a_valid_trace(exporter, client):
    def build(tracer):
        with tracer.start_as_current_span("GET /health", attributes={"http.method": "GET"}):
            pass

    spans = recorded_spans(build)
    exporter.export(spans)
    assert exporter.force_flush(60_000)

    trace = client.get_trace(mlflow_id(spans[0]))
    assert trace.info.state.value == "OK"
    assert trace.info.tags["mlflow.traceName"] == "GET /health"
    assert trace.info.request_preview is None and trace.info.token_usage is None
    [span] = trace.data.spans
    assert (span.name, span.span_type, span.parent_id) == ("GET /health", "UNKNOWN", None)
    assert span.get_attribute("http.method") == "GET"


def test_foreign_genai_and_openinference_spans_land_typed(exporter, client):
    def build(tracer):
        with tracer.start_as_current_span("agent", attributes={attr.OPENINFERENCE_SPAN_KIND: "AGENT",
                                                               attr.INPUT_VALUE: "find the weather"}):
            with tracer.start_as_current_span("llm", attributes={
                    attr.OPENINFERENCE_SPAN_KIND: "LLM", attr.INPUT_VALUE: "prompt text",
                    attr.OUTPUT_VALUE: "completion text", attr.LLM_TOKEN_COUNT_PROMPT: 5,
                    attr.LLM_TOKEN_COUNT_COMPLETION: 3}):
                pass
            with tracer.start_as_current_span("execute_tool weather", attributes={
                    attr.GEN_AI_OPERATION_NAME: "execute_tool", attr.GEN_AI_TOOL_CALL_ARGUMENTS: '{"city": "Oslo"}'}):
                pass
            with tracer.start_as_current_span("retrieve", attributes={attr.OPENINFERENCE_SPAN_KIND: "RETRIEVER"}):
                pass

    spans = recorded_spans(build)
    exporter.export(spans)
    assert exporter.force_flush(60_000)

    trace = client.get_trace(mlflow_id(spans[0]))
    stored = by_name(trace)
    assert {name: span.span_type for name, span in stored.items()} == {
        "agent": "AGENT", "llm": "LLM", "execute_tool weather": "TOOL", "retrieve": "RETRIEVER"}
    assert stored["llm"].inputs == "prompt text" and stored["llm"].outputs == "completion text"
    assert stored["execute_tool weather"].inputs == {"city": "Oslo"}
    assert json.loads(trace.info.request_preview) == "find the weather"
    assert trace.info.token_usage == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}


def test_spans_in_several_batches_late_child_and_resend_make_one_trace(exporter, client, experiment_id):
    spans = recorded_spans(lambda tracer: program_trace(tracer, tokens=(10, 4)))
    root = next(s for s in spans if s.parent is None)
    chat = next(s for s in spans if s.name.startswith("chat"))
    middle = [s for s in spans if s not in (root, chat)]
    trace_id = mlflow_id(root)

    exporter.export(middle)  # children before the root
    assert exporter.force_flush(60_000)
    [partial] = client.search_traces(locations=[experiment_id])
    assert partial.info.trace_id == trace_id and partial.info.state.value == "IN_PROGRESS"
    assert sorted(s.name for s in partial.data.spans) == sorted(s.name for s in middle)

    exporter.export([root])
    assert exporter.force_flush(60_000)
    exporter.export([chat])  # a late child, after the root
    exporter.export(middle)  # a re-sent batch
    assert exporter.force_flush(60_000)

    trace = client.get_trace(trace_id)
    assert sorted(s.name for s in trace.data.spans) == sorted(s.name for s in spans)
    assert trace.info.state.value == "OK"
    assert json.loads(trace.info.request_preview) == {"question": "What is 2+2?"}
    assert trace.info.token_usage == {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}
    assert trace.info.execution_time_ms == root.end_time // 1_000_000 - root.start_time // 1_000_000  # MLflow: end ms - start ms


def test_error_root_makes_an_error_trace(exporter, client):
    def build(tracer):
        with tracer.start_as_current_span("ChainOfThought", attributes={attr.MLFLOW_SPAN_TYPE: "CHAIN"}) as span:
            span.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
            span.add_event("exception", {"exception.type": "ValueError", "exception.message": "boom"})

    spans = recorded_spans(build)
    exporter.export(spans)
    assert exporter.force_flush(60_000)

    trace = client.get_trace(mlflow_id(spans[0]))
    assert trace.info.state.value == "ERROR"
    [span] = trace.data.spans
    assert span.status.status_code.value == "ERROR" and span.status.description == "ValueError: boom"
    assert [(e.name, e.attributes["exception.message"]) for e in span.events] == [("exception", "boom")]


def test_eight_threads_exporting_at_once(exporter, client, experiment_id):
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("threads")
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for call in range(15):
            program_trace(tracer, question=f"q{worker}-{call}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exporter.force_flush(120_000)

    traces = client.search_traces(locations=[experiment_id], max_results=500)
    assert len(traces) == 8 * 15
    previews = {json.loads(t.info.request_preview)["question"] for t in traces}
    assert previews == {f"q{w}-{c}" for w in range(8) for c in range(15)}
    assert all(t.info.token_usage["total_tokens"] == 18 for t in traces)
    assert exporter.exported_spans == 8 * 15 * 4 and exporter.dropped_spans == 0


def test_batch_span_processor_and_active_run_link(exporter, sqlite_uri, experiment_id):
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    mlflow.set_tracking_uri(sqlite_uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        program_trace(provider.get_tracer("bsp"))
        provider.force_flush()
        assert exporter.force_flush(60_000)
    program_trace(provider.get_tracer("bsp"), question="outside the run")
    provider.shutdown()  # shuts the exporter down too: what is queued is delivered

    linked = mlflow.search_traces(locations=[experiment_id], run_id=run.info.run_id, return_type="list")
    assert [json.loads(t.info.request_preview)["question"] for t in linked] == ["What is 2+2?"]
    assert len(mlflow.search_traces(locations=[experiment_id], return_type="list")) == 2
    assert exporter.exported_spans == 8


def test_run_and_model_captured_at_the_root_start_reach_the_trace_metadata(exporter, sqlite_uri, experiment_id):
    """Behind a BatchSpanProcessor that exports after the run ended: the run still links, the model id lands."""
    provider = TracerProvider()
    provider.add_span_processor(MlflowContextProcessor())
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    mlflow.set_tracking_uri(sqlite_uri)
    model = mlflow.initialize_logged_model(name="served", experiment_id=experiment_id)
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run, mlflow.set_active_model(model_id=model.model_id):
            program_trace(provider.get_tracer("ctx"))
        program_trace(provider.get_tracer("ctx"), question="afterwards")
        provider.shutdown()  # exported now, after the run ended and the model is no longer active
    finally:
        mlflow.clear_active_model()

    [linked] = mlflow.search_traces(locations=[experiment_id], run_id=run.info.run_id, return_type="list")
    assert json.loads(linked.info.request_preview)["question"] == "What is 2+2?"
    assert linked.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    assert linked.info.trace_metadata["mlflow.modelId"] == model.model_id
    [by_model] = mlflow.search_traces(locations=[experiment_id], model_id=model.model_id, return_type="list")
    assert by_model.info.trace_id == linked.info.trace_id
    [root] = [s for s in by_model.data.spans if s.parent_id is None]
    assert root.get_attribute("mlflow.modelId") == model.model_id
    assert exporter.exported_spans == 8 and exporter.dropped_spans == 0


def test_no_arguments_reads_mlflow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    exporter = MlflowSpanExporter()
    spans = recorded_spans(program_trace)
    exporter.export(spans)
    exporter.shutdown()

    client = MlflowClient(f"sqlite:///{tmp_path / 'env.db'}")
    experiment = client.get_experiment_by_name("from-env")
    assert client.get_trace(mlflow_id(spans[0])).info.experiment_id == experiment.experiment_id


def test_explicit_experiment_name_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "31337")  # what mlflow.set_experiment() leaves behind
    uri = f"sqlite:///{tmp_path / 'explicit.db'}"
    exporter = MlflowSpanExporter(uri, experiment_name="explicit")
    spans = recorded_spans(program_trace)
    exporter.export(spans)
    exporter.shutdown()

    client = MlflowClient(uri)
    assert exporter.dropped_spans == 0
    assert client.get_trace(mlflow_id(spans[0])).info.experiment_id == client.get_experiment_by_name(
        "explicit").experiment_id


def test_default_destination_is_mlflow_db_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    exporter = MlflowSpanExporter()
    assert exporter.tracking_uri == "sqlite:///mlflow.db"
    spans = recorded_spans(program_trace)
    exporter.export(spans)
    exporter.shutdown()
    trace = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_trace(mlflow_id(spans[0]))
    assert trace.info.experiment_id == "0"


def test_registered_as_opentelemetry_traces_exporter():
    from importlib.metadata import entry_points

    [entry] = entry_points(group="opentelemetry_traces_exporter", name="mlflow")
    assert entry.load() is MlflowSpanExporter


@pytest.mark.parametrize("uri", ["./mlruns", "file:///tmp/mlruns"])
def test_file_store_fails_with_a_clear_message(uri):
    with pytest.raises(ValueError, match="file store .*sqlite:///mlflow.db"):
        MlflowSpanExporter(uri)


def test_unsupported_scheme_is_named_without_credentials():
    with pytest.raises(ValueError, match="databricks://") as raised:
        MlflowSpanExporter("databricks://user:hunter2@profile")
    assert "hunter2" not in str(raised.value)


def test_refused_write_is_counted_and_logged_with_its_cause(sqlite_uri, caplog):
    exporter = MlflowSpanExporter(sqlite_uri, experiment_id="424242")
    spans = recorded_spans(program_trace)
    with caplog.at_level(logging.ERROR, logger="dspy_otel.exporters"):
        assert exporter.export(spans).name == "SUCCESS"  # queued; the refusal comes from the writer
        assert exporter.force_flush(60_000)
    assert exporter.dropped_spans == 4 and exporter.exported_spans == 0
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert "424242" in record.getMessage() and "RESOURCE_DOES_NOT_EXIST" in record.getMessage()
    exporter.shutdown()


def test_opentelemetry_instrument_launcher_uses_it(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("from opentelemetry import trace\n"
                   "with trace.get_tracer('app').start_as_current_span('launched'):\n    pass\n")
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "mlflow", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "launched-app", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'launched.db'}"}
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    subprocess.run([str(launcher), sys.executable, str(app)], env=env, cwd=tmp_path, check=True, timeout=240)

    [trace] = MlflowClient(f"sqlite:///{tmp_path / 'launched.db'}").search_traces(locations=["0"])
    assert trace.info.tags["mlflow.traceName"] == "launched"
    assert trace.info.tags["service.name"] == "launched-app"
