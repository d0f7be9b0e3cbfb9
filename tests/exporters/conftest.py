"""Synthetic span pipelines into MlflowSpanExporter, sqlite stores, and a shared real `mlflow server`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dspy_otel.exporters import MlflowSpanExporter
from dspy_otel.instrumentation import attributes as attr
from dspy_otel.testing.mlflow_server import MlflowServer

SERVICE = "exporter-tests"


def recorded_spans(build: Any) -> list[ReadableSpan]:
    """Finished spans of ``build(tracer)``, recorded in memory (to export them in any order later)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("tests.exporters"))
    return list(memory.get_finished_spans())


def program_trace(tracer: Any, question: str = "What is 2+2?", tokens: tuple[int, int] = (11, 7)) -> None:
    """A DSPy-shaped trace with our attributes: CHAIN → LLM → PARSER → CHAT_MODEL (with usage)."""
    def typed(span_type: str, inputs: Any, outputs: Any) -> dict[str, Any]:
        return {attr.MLFLOW_SPAN_TYPE: span_type, attr.MLFLOW_SPAN_INPUTS: json.dumps(inputs),
                attr.MLFLOW_SPAN_OUTPUTS: json.dumps(outputs)}

    answer = {"answer": f"answer for: {question}"}
    with tracer.start_as_current_span("ChainOfThought", attributes=typed("CHAIN", {"question": question}, answer)):
        with tracer.start_as_current_span("Predict(question -> answer)",
                                          attributes=typed("LLM", {"question": question}, answer)):
            with tracer.start_as_current_span("ChatAdapter", attributes=typed("PARSER", {"q": question}, answer)):
                chat = typed("CHAT_MODEL", {"messages": [{"role": "user", "content": question}]},
                             {"choices": [{"message": {"content": answer["answer"]}}]})
                chat |= {attr.GEN_AI_OPERATION_NAME: "chat", attr.GEN_AI_REQUEST_MODEL: "stub-model",
                         attr.GEN_AI_USAGE_INPUT_TOKENS: tokens[0], attr.GEN_AI_USAGE_OUTPUT_TOKENS: tokens[1]}
                with tracer.start_as_current_span("chat stub-model", attributes=chat):
                    pass


def mlflow_id(span: ReadableSpan) -> str:
    return f"tr-{span.context.trace_id:032x}"


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(sqlite_uri: str) -> MlflowClient:
    return MlflowClient(sqlite_uri)


@pytest.fixture
def experiment_id(client: MlflowClient) -> str:
    return client.create_experiment("exporter-tests")


@pytest.fixture
def exporter(sqlite_uri: str, experiment_id: str) -> Iterator[MlflowSpanExporter]:
    exporter = MlflowSpanExporter(sqlite_uri, experiment_id=experiment_id)
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
