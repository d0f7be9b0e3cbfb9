"""Every touch of MLflow internals the exporter makes, in one place.

Tested with MLflow 3.17 (:data:`TESTED_MLFLOW`). These names are semi-public and have moved
between MLflow releases; ``tests/exporters/test_mlflow_compat.py`` imports each of them and fails
loudly when one moves. Nothing else in :mod:`dspy_otel.exporters` imports from ``mlflow``.

What MLflow gives for free and is reused here rather than reimplemented:

- ``Span.from_otel_proto``: the conversion the tracking server applies to OTLP spans
  (``tr-<32 hex>`` trace ids, JSON-encoded attribute values, resource, events, links);
- the SQL store's ``log_spans``: one transaction per call; creates the trace info when missing,
  upserts spans by (trace, span) id, sets state from the root span, execution time from the
  span time range, request/response previews from the root's inputs/outputs, tree-aware token
  usage totals from ``gen_ai.usage.*`` / OpenInference counts, resource attributes as trace tags
  and ``mlflow.traceTag.*`` root attributes as trace tags (``mlflow.traceName`` → trace name);
- the OTLP ingest translators' span-kind mapping (GenAI ``gen_ai.operation.name``,
  OpenInference ``openinference.span.kind``) for spans that carry no ``mlflow.spanType``;
- MLflow's own answers to "which run / which model is this trace for" (the latest active run in
  any thread; the active model in any thread, else the pyfunc prediction context's model), and the
  trace metadata keys its own traces record them under (``mlflow.sourceRun``, ``mlflow.modelId``).
  Neither the SQL store's ``log_spans`` nor the server's OTLP ingest reads these from span
  attributes (MLflow 3.17), so :func:`add_trace_metadata` writes them as metadata rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow.entities.span import Span
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.store.tracking.dbmodels.models import SqlTraceMetadata
from mlflow.store.tracking.rest_store import RestStore
from mlflow.tracing.constant import SpanAttributeKey, TraceMetadataKey, TraceTagKey
from mlflow.tracing.otel.translation import translate_span_type_from_otel
from mlflow.tracing.utils import generate_mlflow_trace_id_from_otel_trace_id, maybe_get_logged_model_id
from mlflow.tracing.utils.otlp import MLFLOW_EXPERIMENT_ID_HEADER, MLFLOW_RUN_ID_HEADER, OTLP_TRACES_PATH
from mlflow.tracking._tracking_service.utils import _get_store
from mlflow.tracking.fluent import _get_active_model_id_global, _get_latest_active_run
from mlflow.utils.rest_utils import MlflowHostCreds, http_request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TESTED_MLFLOW = ">=3.17,<3.18"

SPAN_TYPE_KEY: str = SpanAttributeKey.SPAN_TYPE
TRACE_NAME_ATTRIBUTE: str = SpanAttributeKey.TRACE_TAG_PREFIX + TraceTagKey.TRACE_NAME
EXPERIMENT_ID_HEADER: str = MLFLOW_EXPERIMENT_ID_HEADER
RUN_ID_HEADER: str = MLFLOW_RUN_ID_HEADER
SOURCE_RUN_KEY: str = TraceMetadataKey.SOURCE_RUN
MODEL_ID_KEY: str = TraceMetadataKey.MODEL_ID
TRACES_PATH: str = OTLP_TRACES_PATH

__all__ = [
    "EXPERIMENT_ID_HEADER", "MODEL_ID_KEY", "RUN_ID_HEADER", "SOURCE_RUN_KEY",
    "SPAN_TYPE_KEY", "TESTED_MLFLOW", "TRACES_PATH", "TRACE_NAME_ATTRIBUTE", "AbstractStore", "MlflowException",
    "MlflowHostCreds", "active_model_id", "active_run_id", "add_trace_metadata", "derive_span_type", "get_store",
    "host_creds", "http_call", "is_rest_store", "log_spans", "mlflow_trace_id",
]


def get_store(tracking_uri: str) -> AbstractStore:
    """The tracking store MLflow itself would use for ``tracking_uri``."""
    return _get_store(tracking_uri)


def is_rest_store(store: AbstractStore) -> bool:
    return isinstance(store, RestStore)


def host_creds(store: AbstractStore) -> MlflowHostCreds:
    """Host and credentials (token, basic auth, TLS settings) of a REST store, from MLflow's config."""
    assert isinstance(store, RestStore)
    return store.get_host_creds()


def derive_span_type(attributes: Mapping[str, Any]) -> str | None:
    """MLflow's span type for GenAI / OpenInference span-kind attributes, if any."""
    return translate_span_type_from_otel(dict(attributes))


def mlflow_trace_id(otel_trace_id: int) -> str:
    """``tr-<32 hex>``: the MLflow trace id of an OpenTelemetry trace id."""
    return generate_mlflow_trace_id_from_otel_trace_id(otel_trace_id)


def log_spans(store: AbstractStore, experiment_id: str, request: ExportTraceServiceRequest) -> None:
    """Convert an OTLP request like the tracking server does and write it in one ``log_spans`` call."""
    spans = [
        Span.from_otel_proto(proto_span, resource=resource_spans.resource)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for proto_span in scope_spans.spans
    ]
    store.log_spans(experiment_id, spans)


def active_run_id() -> str | None:
    """The run MLflow's own tracing would attach a trace to: the latest active run in any thread."""
    run = _get_latest_active_run()
    return run.info.run_id if run is not None else None


def active_model_id() -> str | None:
    """The model MLflow's own tracing would attach a trace to: the active model (set by
    ``mlflow.set_active_model`` or by loading a logged model) in any thread, else the model of the
    pyfunc prediction context."""
    return _get_active_model_id_global() or maybe_get_logged_model_id()


def add_trace_metadata(store: AbstractStore, metadata: Mapping[str, Mapping[str, str]]) -> None:
    """Upsert ``{trace id: {key: value}}`` into existing traces' metadata of a SQL store, in one transaction."""
    with store.ManagedSessionMaker(read_only=False) as session:  # type: ignore[attr-defined]
        for trace_id in sorted(metadata):  # sorted, like MLflow's own writers, for a stable lock order
            for key, value in sorted(metadata[trace_id].items()):
                session.merge(SqlTraceMetadata(request_id=trace_id, key=key, value=value))


def http_call(creds: MlflowHostCreds, method: str, endpoint: str, *, timeout: float, **kwargs: Any) -> Any:
    """One HTTP request with MLflow's auth and TLS handling and no retries (the caller retries).

    Returns the ``requests.Response``; connection errors raise ``MlflowException``.
    """
    return http_request(host_creds=creds, endpoint=endpoint, method=method, max_retries=0, backoff_factor=0,
                        timeout=timeout, raise_on_status=False, **kwargs)
