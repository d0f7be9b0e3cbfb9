"""OpenTelemetry SDK spans → one OTLP request, completed with what MLflow needs to type and name traces.

The request is what both destinations write: the SQL store converts it like the tracking server
does, an ``http(s)://`` server receives it as is. MLflow's ingest stores a span's type column only
from ``mlflow.spanType``, so every span gets one: ours as recorded (a plain string such as
``CHAT_MODEL``), else MLflow's own mapping of GenAI / OpenInference span kinds, else ``UNKNOWN``.
Root spans get ``mlflow.traceTag.mlflow.traceName`` (the trace name MLflow's own traces carry).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan

from dspy_otel.exporters import _mlflow_compat as compat
from dspy_otel.instrumentation.attributes import GEN_AI_OPERATION_NAME, OPENINFERENCE_SPAN_KIND, SpanType

_KIND_KEYS = (GEN_AI_OPERATION_NAME, OPENINFERENCE_SPAN_KIND)


def to_otlp(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """Encode ``spans`` (any traces, any resources) as one OTLP request with MLflow's type and name."""
    request: ExportTraceServiceRequest = encode_spans(spans)
    for span in iter_spans(request):
        _complete(span)
    return request


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[ProtoSpan]:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            yield from scope_spans.spans


def _complete(span: ProtoSpan) -> None:
    values = {kv.key: kv.value for kv in span.attributes}
    recorded = values.get(compat.SPAN_TYPE_KEY)
    if recorded is not None:
        recorded.string_value = _unquoted(recorded.string_value)
    else:
        kinds = {key: values[key].string_value for key in _KIND_KEYS if key in values}
        span_type = (compat.derive_span_type(kinds) if kinds else None) or SpanType.UNKNOWN
        span.attributes.append(KeyValue(key=compat.SPAN_TYPE_KEY, value=AnyValue(string_value=span_type)))
    if not span.parent_span_id and compat.TRACE_NAME_ATTRIBUTE not in values:
        span.attributes.append(KeyValue(key=compat.TRACE_NAME_ATTRIBUTE, value=AnyValue(string_value=span.name)))


def _unquoted(value: str) -> str:
    """``"CHAT_MODEL"`` (JSON-quoted, as MLflow's own exporter sends it) → ``CHAT_MODEL``."""
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, str):
            return decoded
    return value
