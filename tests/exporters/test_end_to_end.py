"""Instrumented DSPy programs over HTTP to the local stub, exported by MlflowSpanExporter into sqlite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dspy
import pytest
from mlflow import MlflowClient
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dspy_otel.exporters import MlflowSpanExporter
from dspy_otel.instrumentation import DSPyInstrumentor

from ..conftest import API_KEY


def weather(city: str, days: int) -> str:
    """Weather forecast for a city."""
    return f"sunny in {city} for {days} days"


@pytest.fixture
def traced(exporter: MlflowSpanExporter, client: MlflowClient, experiment_id: str,
           make_lm: Any) -> Iterator[Any]:
    """``traced(program, **inputs)``: run an instrumented program, deliver its spans, return its MLflow trace."""
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = DSPyInstrumentor()
    instrumentor.instrument(tracer_provider=provider, capture_content=True)

    def run(program: Any, **inputs: Any) -> Any:
        with dspy.context(lm=make_lm(), adapter=None):
            program(**inputs)
        provider.force_flush()
        assert exporter.force_flush(60_000)
        [found] = client.search_traces(locations=[experiment_id], max_results=10)
        return client.get_trace(found.info.trace_id)

    yield run
    instrumentor.uninstrument()
    provider.shutdown()


def span_types(trace: Any) -> dict[str, str]:
    return {span.name.split("(")[0]: span.span_type for span in trace.data.spans}


def chat_usage(trace: Any) -> dict[str, int]:
    chats = [s for s in trace.data.spans if s.span_type == "CHAT_MODEL"]
    assert chats
    inputs = sum(s.get_attribute("gen_ai.usage.input_tokens") for s in chats)
    outputs = sum(s.get_attribute("gen_ai.usage.output_tokens") for s in chats)
    return {"input_tokens": inputs, "output_tokens": outputs, "total_tokens": inputs + outputs}


def test_chain_of_thought_trace(traced):
    trace = traced(dspy.ChainOfThought("question -> answer"), question="What is 2+2?")

    assert trace.info.state.value == "OK"
    assert span_types(trace) == {"ChainOfThought": "CHAIN", "Predict": "LLM", "ChatAdapter": "PARSER",
                                 "chat stub-model": "CHAT_MODEL"}
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.inputs == {"question": "What is 2+2?"}
    assert "answer for: What is 2+2?" in json.dumps(root.outputs)
    assert "What is 2+2?" in trace.info.request_preview
    assert "answer for: What is 2+2?" in trace.info.response_preview
    assert trace.info.token_usage == chat_usage(trace)
    assert trace.info.tags["mlflow.traceName"] == "ChainOfThought"
    assert API_KEY not in trace.to_json()


def test_react_agent_trace_with_tool(traced):
    trace = traced(dspy.ReAct("question -> answer", tools=[weather], max_iters=4), question="Weather in Oslo?")

    types = span_types(trace)
    assert types["invoke_agent ReAct"] == "AGENT"
    assert types["execute_tool weather"] == "TOOL"
    assert {"CHAT_MODEL", "PARSER", "LLM", "CHAIN"} <= set(types.values())
    tool = next(s for s in trace.data.spans if s.name == "execute_tool weather")
    assert "city" in json.dumps(tool.inputs)
    assert "sunny in" in json.dumps(tool.outputs)
    assert "Weather in Oslo?" in trace.info.request_preview
    assert trace.info.token_usage == chat_usage(trace)
    assert len([s for s in trace.data.spans if s.span_type == "CHAT_MODEL"]) >= 2
    assert API_KEY not in trace.to_json()
