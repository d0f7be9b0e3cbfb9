"""MlflowSpanExporter against a real `mlflow server` (sqlite backend): delivery, 4xx causes, outages."""

from __future__ import annotations

import json
import logging
import time
import uuid

import mlflow
import pytest
from mlflow import MlflowClient
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dspy_otel.exporters import MlflowSpanExporter
from dspy_otel.testing.mlflow_server import MlflowServer

from .conftest import SERVICE, mlflow_id, program_trace, recorded_spans

pytestmark = pytest.mark.integration


def new_experiment(client: MlflowClient) -> str:
    return client.create_experiment(f"server-{uuid.uuid4().hex[:8]}")


def test_traces_reach_the_server_complete(mlflow_server):
    client = MlflowClient(mlflow_server.url)
    experiment_id = new_experiment(client)
    exporter = MlflowSpanExporter(mlflow_server.url, experiment_id=experiment_id)
    spans = recorded_spans(program_trace) + recorded_spans(lambda tracer: tracer.start_span("plain").end())
    exporter.export(spans)
    assert exporter.force_flush(60_000)

    trace = client.get_trace(mlflow_id(spans[0]))
    assert trace.info.state.value == "OK"
    assert json.loads(trace.info.request_preview) == {"question": "What is 2+2?"}
    assert trace.info.token_usage == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert trace.info.tags["mlflow.traceName"] == "ChainOfThought"
    assert trace.info.tags["service.name"] == SERVICE
    assert sorted(s.span_type for s in trace.data.spans) == ["CHAIN", "CHAT_MODEL", "LLM", "PARSER"]

    mlflow.set_tracking_uri(mlflow_server.url)
    assert len(mlflow.search_traces(locations=[experiment_id], return_type="list")) == 2
    typed = mlflow.search_traces(locations=[experiment_id], filter_string="span.type = 'CHAT_MODEL'",
                                 return_type="list")
    assert [t.info.trace_id for t in typed] == [mlflow_id(spans[0])]
    exporter.shutdown()
    assert exporter.exported_spans == 5 and exporter.dropped_spans == 0


def test_experiment_by_name_is_created_then_found_and_run_linked(mlflow_server):
    client = MlflowClient(mlflow_server.url)
    name = f"by-name-{uuid.uuid4().hex[:8]}"
    creating = MlflowSpanExporter(mlflow_server.url, experiment_name=name)
    first = recorded_spans(program_trace)
    creating.export(first)
    creating.shutdown()
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    assert client.get_trace(mlflow_id(first[0])).info.experiment_id == experiment.experiment_id

    run = client.create_run(experiment.experiment_id)
    finding = MlflowSpanExporter(mlflow_server.url, experiment_name=name, run_id=run.info.run_id)
    second = recorded_spans(program_trace)
    finding.export(second)
    finding.shutdown()
    mlflow.set_tracking_uri(mlflow_server.url)
    linked = mlflow.search_traces(locations=[experiment.experiment_id], run_id=run.info.run_id,
                                  return_type="list")
    assert [t.info.trace_id for t in linked] == [mlflow_id(second[0])]
    assert finding.exported_spans == creating.exported_spans == 4


def test_4xx_is_reported_with_its_cause_and_counted(mlflow_server, caplog):
    exporter = MlflowSpanExporter(mlflow_server.url, experiment_id="987654")
    with caplog.at_level(logging.ERROR, logger="dspy_otel.exporters"):
        exporter.export(recorded_spans(program_trace))
        assert exporter.force_flush(60_000)
    assert exporter.dropped_spans == 4 and exporter.exported_spans == 0
    [record] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "HTTP 404" in record and "987654" in record
    exporter.shutdown()


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_server_stopped_and_restarted_mid_run_loses_nothing(tmp_path, caplog):
    with MlflowServer(tmp_path) as server:
        client = MlflowClient(server.url)
        experiment_id = new_experiment(client)
        exporter = MlflowSpanExporter(server.url, experiment_id=experiment_id)
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        tracer = provider.get_tracer("outage")
        caplog.set_level(logging.WARNING, logger="dspy_otel.exporters")

        for call in range(10):
            program_trace(tracer, question=f"before {call}")
        provider.force_flush()
        assert exporter.force_flush(60_000)

        server.stop()
        for call in range(15):
            program_trace(tracer, question=f"during {call}")
        provider.force_flush()
        wait_for(lambda: any("unavailable" in r.getMessage() for r in caplog.records))
        assert exporter.pending_spans > 0

        server.start()
        for call in range(5):
            program_trace(tracer, question=f"after {call}")
        provider.force_flush()
        assert exporter.force_flush(120_000)

        traces = client.search_traces(locations=[experiment_id], max_results=100)
        questions = {json.loads(t.info.request_preview)["question"] for t in traces}
        assert questions == ({f"before {n}" for n in range(10)} | {f"during {n}" for n in range(15)}
                             | {f"after {n}" for n in range(5)})
        assert exporter.dropped_spans == 0 and exporter.exported_spans == 30 * 4
        messages = [r.getMessage() for r in caplog.records]
        assert sum("is unavailable" in m for m in messages) == 1
        assert sum("available again" in m for m in messages) == 1
        provider.shutdown()
