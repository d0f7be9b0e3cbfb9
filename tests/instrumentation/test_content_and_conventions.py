"""Content capture switches, redaction, bounds, odd values, semantic-convention families, metrics."""

from __future__ import annotations

import json

import dspy
import numpy as np
import pydantic
import pytest

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.config import ContentCapture, InstrumentationConfig, parse_capture_content
from dspy_otel.instrumentation.content import REDACTED, dumps, scrub_text, to_jsonable

from ..conftest import API_KEY
from .conftest import Spans

CONTENT_KEYS = {attr.MLFLOW_SPAN_INPUTS, attr.MLFLOW_SPAN_OUTPUTS, attr.GEN_AI_INPUT_MESSAGES,
                attr.GEN_AI_OUTPUT_MESSAGES, attr.GEN_AI_SYSTEM_INSTRUCTIONS, attr.INPUT_VALUE, attr.OUTPUT_VALUE}


@pytest.fixture
def bare(instrument, span_exporter) -> Spans:
    """Instrumented as a bare instrumentor: capture_content left to the environment."""
    instrument(capture_content=None)
    return Spans(span_exporter)


def test_content_is_off_by_default(bare, lm, monkeypatch):
    dspy.ChainOfThought("question -> answer")(question="private question")
    assert bare.all
    for span in bare.all:
        assert not CONTENT_KEYS & set(span.attributes), span.name
        assert attr.MLFLOW_SPAN_TYPE in span.attributes
    assert "private question" not in bare.text()
    assert bare.one("chat ").attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] > 0


@pytest.mark.parametrize(("value", "expected"), [
    ("true", ContentCapture.SPAN_ONLY), ("False", ContentCapture.NO_CONTENT), ("SPAN_AND_EVENT", ContentCapture.SPAN_AND_EVENT),
    ("event_only", ContentCapture.EVENT_ONLY), ("NO_CONTENT", ContentCapture.NO_CONTENT), ("bogus", ContentCapture.NO_CONTENT),
    (True, ContentCapture.SPAN_ONLY), (None, ContentCapture.NO_CONTENT),
])
def test_capture_content_values(value, expected):
    assert parse_capture_content(value) is expected


def test_environment_configures_capture_semconv_and_length(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    monkeypatch.setenv("DSPY_OTEL_SEMCONV", "openinference, nonsense")
    monkeypatch.setenv("DSPY_OTEL_MAX_CONTENT_LENGTH", "-3")
    monkeypatch.setenv("DSPY_OTEL_REDACT_KEYS", "ssn, Customer_ID")
    config = InstrumentationConfig.resolve()
    assert config.capture is ContentCapture.SPAN_ONLY
    assert config.families == {"openinference"}
    assert config.max_content_length == 16_384
    assert config.redact_keys == {"ssn", "customer_id"}
    assert InstrumentationConfig.resolve(semconv="all").families == attr.ALL_FAMILIES


def test_env_capture_reaches_spans(instrument, span_exporter, lm, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument(capture_content=None)
    dspy.Predict("question -> answer")(question="from env")
    assert "from env" in Spans(span_exporter).one("Predict(").attributes[attr.MLFLOW_SPAN_INPUTS]


def test_openinference_family_only(instrument, span_exporter, lm):
    instrument(semconv="openinference")
    dspy.Predict("question -> answer")(question="phoenix")
    spans = Spans(span_exporter)
    chat = spans.one("chat ")
    assert chat.attributes[attr.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert chat.attributes[attr.LLM_MODEL_NAME] == "stub-model"
    assert chat.attributes[attr.LLM_TOKEN_COUNT_TOTAL] == (chat.attributes[attr.LLM_TOKEN_COUNT_PROMPT]
                                                           + chat.attributes[attr.LLM_TOKEN_COUNT_COMPLETION])
    assert "phoenix" in spans.one("Predict(").attributes[attr.INPUT_VALUE]
    assert spans.one("Predict(").attributes[attr.OPENINFERENCE_SPAN_KIND] == "LLM"
    for span in spans.all:
        assert not any(k.startswith(("gen_ai.", "mlflow.")) for k in span.attributes), span.name


def test_truncation_is_marked(instrument, span_exporter, lm):
    instrument(max_content_length=200)
    dspy.Predict("question -> answer")(question="x" * 5000)
    predictor = Spans(span_exporter).one("Predict(")
    recorded = predictor.attributes[attr.MLFLOW_SPAN_INPUTS]
    assert len(recorded) < 260 and "…[truncated" in recorded
    assert predictor.attributes[attr.DSPY_CONTENT_TRUNCATED] is True


class Profile(pydantic.BaseModel):
    name: str
    password: str


def test_unserializable_inputs_are_recorded_safely(spans, lm):
    class Loop(dspy.Module):
        def forward(self, **kwargs):
            return dspy.Prediction(answer="ok")

    cyclic: dict = {"name": "cycle"}
    cyclic["self"] = cyclic
    Loop()(cyclic=cyclic, array=np.arange(6).reshape(2, 3), profile=Profile(name="ada", password="hunter2-pass"),
           blob=b"\x00\x01", obj=object())
    recorded = json.loads(spans.one("Loop").attributes[attr.MLFLOW_SPAN_INPUTS])
    assert recorded["cyclic"]["self"].startswith("<cycle")
    assert recorded["array"] == [[0, 1, 2], [3, 4, 5]]
    assert recorded["profile"] == {"name": "ada", "password": REDACTED}
    assert recorded["blob"] == "<2 bytes>"
    assert recorded["obj"].startswith("<object object")
    assert json.loads(spans.one("Loop").attributes[attr.MLFLOW_SPAN_OUTPUTS]) == {"answer": "ok"}


def test_redaction_rules():
    data = to_jsonable({"api_key": "k-123456789", "max_tokens": 5, "headers": {"X": "y"}, "ssn": "1",
                        "url": "https://user:pw@host/path?token=abc&x=1"}, frozenset({"ssn"}))
    assert data["api_key"] == data["headers"] == data["ssn"] == REDACTED
    assert data["max_tokens"] == 5
    assert data["url"] == f"https://{REDACTED}@host/path?token={REDACTED}&x=1"
    assert scrub_text("Authorization: Bearer abcdefghijk") == f"Authorization: Bearer {REDACTED}"
    text, truncated = dumps({"a": "b" * 100}, 20)
    assert truncated and text.startswith('{"a": "bbbb')


def test_metrics_duration_and_tokens(spans, lm, metric_reader):
    dspy.Predict("question -> answer")(question="measure me")
    chat = spans.one("chat ")
    points = {}
    for resource_metrics in metric_reader.get_metrics_data().resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert points[attr.METRIC_OPERATION_DURATION][0].count == 1
    assert points[attr.METRIC_OPERATION_DURATION][0].attributes[attr.GEN_AI_REQUEST_MODEL] == "stub-model"
    tokens = {p.attributes[attr.GEN_AI_TOKEN_TYPE]: p.sum for p in points[attr.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS],
                      "output": chat.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS]}


def test_embedder_and_embeddings_retriever(spans, openai_stub):
    embedder = dspy.Embedder("openai/text-embedding-3-small", api_base=openai_stub.base_url, api_key=API_KEY,
                             caching=False)
    retriever = dspy.retrievers.Embeddings(corpus=["red apples", "blue sky", "green grass"], embedder=embedder, k=2)
    spans.clear()
    result = retriever("what color is the sky?")

    assert len(result.passages) == 2
    root = spans.roots()[0]
    assert root.name == "Embeddings"
    assert root.attributes[attr.MLFLOW_SPAN_TYPE] == "RETRIEVER"
    assert root.attributes[attr.DSPY_RETRIEVER_K] == 2
    embed = spans.one("embeddings ")
    assert embed.name == "embeddings text-embedding-3-small"
    assert embed.attributes[attr.GEN_AI_OPERATION_NAME] == "embeddings"
    assert embed.attributes[attr.MLFLOW_SPAN_TYPE] == "EMBEDDING"
    assert spans.parent(embed) is root
    assert API_KEY not in spans.text()


def test_retrieve_module(spans):
    def rm(query, k, **kwargs):
        return [dspy.Prediction(long_text=f"{query} #{i}") for i in range(k)]

    with dspy.context(rm=rm):
        dspy.Retrieve(k=3)("sky")
    span = spans.one("Retrieve")
    assert span.attributes[attr.MLFLOW_SPAN_TYPE] == "RETRIEVER"
    assert span.attributes[attr.DSPY_RETRIEVER_K] == 3
    assert "sky #2" in span.attributes[attr.MLFLOW_SPAN_OUTPUTS]


@pytest.mark.parametrize(("mode", "on_span", "on_event"), [
    ("EVENT_ONLY", False, True), ("SPAN_AND_EVENT", True, True), ("SPAN_ONLY", True, False)])
def test_event_capture_modes(instrument, span_exporter, lm, mode, on_span, on_event):
    instrument(capture_content=mode)
    dspy.Predict("question -> answer")(question="event mode")
    chat = Spans(span_exporter).one("chat ")
    events = [e for e in chat.events if e.name == attr.EVENT_OPERATION_DETAILS]
    assert (attr.GEN_AI_INPUT_MESSAGES in chat.attributes) is on_span
    assert (attr.MLFLOW_SPAN_INPUTS in chat.attributes) is on_span
    assert bool(events) is on_event
    if on_event:
        assert "event mode" in events[0].attributes[attr.GEN_AI_INPUT_MESSAGES]
        assert "answer for: event mode" in events[0].attributes[attr.GEN_AI_OUTPUT_MESSAGES]
