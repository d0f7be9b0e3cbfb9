"""Canary for the MLflow internals MlflowSpanExporter relies on: fails loudly when one moves or changes."""

from __future__ import annotations

import importlib
import inspect

import mlflow
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from dspy_otel.exporters import _mlflow_compat as compat

# (module, name) pairs imported by _mlflow_compat; a move in MLflow shows up here by name.
INTERNALS = [
    ("mlflow.entities.span", "Span"),
    ("mlflow.store.tracking.abstract_store", "AbstractStore"),
    ("mlflow.store.tracking.dbmodels.models", "SqlTraceMetadata"),
    ("mlflow.store.tracking.rest_store", "RestStore"),
    ("mlflow.store.tracking.sqlalchemy_store", "SqlAlchemyStore"),
    ("mlflow.tracing.constant", "SpanAttributeKey"),
    ("mlflow.tracing.constant", "TraceMetadataKey"),
    ("mlflow.tracing.constant", "TraceTagKey"),
    ("mlflow.tracing.otel.translation", "translate_span_type_from_otel"),
    ("mlflow.tracing.utils", "generate_mlflow_trace_id_from_otel_trace_id"),
    ("mlflow.tracing.utils", "maybe_get_logged_model_id"),
    ("mlflow.tracing.utils.otlp", "MLFLOW_EXPERIMENT_ID_HEADER"),
    ("mlflow.tracing.utils.otlp", "MLFLOW_RUN_ID_HEADER"),
    ("mlflow.tracing.utils.otlp", "OTLP_TRACES_PATH"),
    ("mlflow.tracking._tracking_service.utils", "_get_store"),
    ("mlflow.tracking.fluent", "_get_active_model_id_global"),
    ("mlflow.tracking.fluent", "_get_latest_active_run"),
    ("mlflow.utils.rest_utils", "http_request"),
]


@pytest.mark.parametrize(("module", "name"), INTERNALS, ids=[f"{m}.{n}" for m, n in INTERNALS])
def test_internal_is_where_the_exporter_expects_it(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} moved: update _mlflow_compat"


def test_installed_mlflow_is_in_the_tested_range():
    assert Version(mlflow.__version__) in SpecifierSet(compat.TESTED_MLFLOW), (
        f"MLflow {mlflow.__version__} is outside the range _mlflow_compat was verified with "
        f"({compat.TESTED_MLFLOW}); run tests/exporters and update TESTED_MLFLOW")


def test_signatures_the_exporter_calls():
    from mlflow.entities.span import Span
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.store.tracking.dbmodels.models import SqlTraceMetadata
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils.rest_utils import http_request

    assert "resource" in inspect.signature(Span.from_otel_proto).parameters
    for store in (SqlAlchemyStore, RestStore):
        assert list(inspect.signature(store.log_spans).parameters)[1:3] == ["location", "spans"]
    assert {"request_id", "key", "value"} <= set(SqlTraceMetadata.__table__.columns.keys())
    assert {"max_retries", "backoff_factor", "timeout", "raise_on_status", "extra_headers"} <= set(
        inspect.signature(http_request).parameters)


def test_constants_have_the_values_the_server_reads():
    assert compat.SPAN_TYPE_KEY == "mlflow.spanType"
    assert compat.TRACE_NAME_ATTRIBUTE == "mlflow.traceTag.mlflow.traceName"
    assert (compat.TRACES_PATH, compat.EXPERIMENT_ID_HEADER) == ("/v1/traces", "x-mlflow-experiment-id")
    # the trace metadata keys MLflow's own traces carry, which search_traces(run_id=/model_id=) read
    assert (compat.SOURCE_RUN_KEY, compat.MODEL_ID_KEY) == ("mlflow.sourceRun", "mlflow.modelId")
    assert compat.mlflow_trace_id(0xABC) == "tr-" + f"{0xABC:032x}"
    assert compat.derive_span_type({"gen_ai.operation.name": "chat"}) == "CHAT_MODEL"
    assert compat.derive_span_type({"openinference.span.kind": "RETRIEVER"}) == "RETRIEVER"
