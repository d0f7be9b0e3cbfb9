"""Where span batches go: a SQL tracking store directly, or a tracking server's OTLP endpoint.

Each ``write`` is one store transaction or one HTTP request. Failures are sorted for the caller's
retry loop: :class:`TransientError` (unreachable, 5xx, 408/429, database busy) is worth retrying,
:class:`PermanentError` (another 4xx, unknown experiment) is not and carries the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dspy_otel.exporters import _mlflow_compat as compat

DEFAULT_EXPERIMENT_ID = "0"
_SQL_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
_FILE_STORE_MESSAGE = (
    "MlflowSpanExporter cannot write to MLflow's file store ({uri}): the file store does not "
    "implement span logging (log_spans) and is deprecated. Use a database, e.g. "
    "tracking_uri='sqlite:///mlflow.db', or a tracking server, e.g. 'http://127.0.0.1:5000'."
)


class TransientError(Exception):
    """The destination is unreachable or busy; the same write may succeed later."""


class PermanentError(Exception):
    """The destination refused the write; retrying it will not help."""


class Destination(Protocol):
    description: str

    def write(self, request: ExportTraceServiceRequest, run_id: str | None, roots: Mapping[str, str | None]) -> None:
        """Write ``request``; ``roots`` maps the MLflow id of each trace whose root span is in it to the
        model id captured for it (or ``None``), and ``run_id`` is the run all of those traces belong to."""


def redact(uri: str) -> str:
    """``uri`` without user name and password, for log lines."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host if parts.port is None else f"{host}:{parts.port}"))


def make_destination(tracking_uri: str, experiment_id: str | None, experiment_name: str | None,
                     request_timeout: float) -> Destination:
    """The destination for ``tracking_uri``; a ``ValueError`` names what is not supported."""
    scheme = urlsplit(tracking_uri).scheme.lower()
    if scheme in ("http", "https"):
        return OtlpHttpDestination(tracking_uri, experiment_id, experiment_name, request_timeout)
    if scheme.split("+")[0] in _SQL_SCHEMES:
        return SqlStoreDestination(tracking_uri, experiment_id, experiment_name)
    if scheme in ("", "file"):
        raise ValueError(_FILE_STORE_MESSAGE.format(uri=redact(tracking_uri)))
    raise ValueError(f"MlflowSpanExporter does not support tracking URI {redact(tracking_uri)!r}: use a SQL "
                     "database (sqlite:///…, postgresql://…, mysql://…) or an http(s):// tracking server.")


class SqlStoreDestination:
    """MLflow's SQL store, opened on first write: spans go through the store's ``log_spans``."""

    def __init__(self, tracking_uri: str, experiment_id: str | None, experiment_name: str | None) -> None:
        self.description = redact(tracking_uri)
        self._uri = tracking_uri
        self._experiment_id = experiment_id
        self._experiment_name = experiment_name
        self._store: compat.AbstractStore | None = None
        self._lock = threading.Lock()

    def write(self, request: ExportTraceServiceRequest, run_id: str | None, roots: Mapping[str, str | None]) -> None:
        try:
            store, experiment_id = self._open()
            compat.log_spans(store, experiment_id, request)
            if metadata := _trace_metadata(run_id, roots):
                compat.add_trace_metadata(store, metadata)
        except compat.MlflowException as error:
            if 400 <= error.get_http_status_code() < 500:
                raise PermanentError(f"{error.error_code}: {error.message}") from error
            raise TransientError(str(error)) from error
        except (PermanentError, TransientError):
            raise
        except Exception as error:  # database unreachable or busy (sqlalchemy OperationalError, …)
            raise TransientError(f"{type(error).__name__}: {error}") from error

    def _open(self) -> tuple[compat.AbstractStore, str]:
        with self._lock:
            if self._store is None:
                self._store = compat.get_store(self._uri)
            if self._experiment_id is None:
                self._experiment_id = self._experiment_from_name(self._store)
            return self._store, self._experiment_id

    def _experiment_from_name(self, store: compat.AbstractStore) -> str:
        if self._experiment_name is None:
            return DEFAULT_EXPERIMENT_ID
        experiment = store.get_experiment_by_name(self._experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(store.create_experiment(self._experiment_name))
        except compat.MlflowException:  # created meanwhile by another writer
            experiment = store.get_experiment_by_name(self._experiment_name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)


def _trace_metadata(run_id: str | None, roots: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """What MLflow's own traces carry in their metadata: the source run and the model id."""
    metadata: dict[str, dict[str, str]] = {}
    for trace_id, model_id in roots.items():
        entries = {compat.SOURCE_RUN_KEY: run_id} if run_id else {}
        if model_id:
            entries[compat.MODEL_ID_KEY] = model_id
        if entries:
            metadata[trace_id] = entries
    return metadata


class OtlpHttpDestination:
    """A tracking server's ``/v1/traces`` (OTLP/HTTP protobuf), with MLflow's auth and TLS settings.

    The run goes in the ``x-mlflow-run-id`` header (the server links the request's traces to it).
    The server's OTLP ingest (MLflow 3.17) has no way to add trace metadata, so a model id stays a
    root span attribute (``mlflow.modelId``) there and is not trace metadata.
    """

    def __init__(self, tracking_uri: str, experiment_id: str | None, experiment_name: str | None,
                 request_timeout: float) -> None:
        self.description = redact(tracking_uri)
        self._creds = compat.host_creds(compat.get_store(tracking_uri))
        self._experiment_id = experiment_id
        self._experiment_name = experiment_name
        self._timeout = request_timeout

    def write(self, request: ExportTraceServiceRequest, run_id: str | None, roots: Mapping[str, str | None]) -> None:
        headers = {"Content-Type": "application/x-protobuf", compat.EXPERIMENT_ID_HEADER: self._experiment()}
        if run_id:
            headers[compat.RUN_ID_HEADER] = run_id
        self._call("POST", compat.TRACES_PATH, data=request.SerializeToString(), extra_headers=headers)

    def _experiment(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._experiment_from_name()
        return self._experiment_id

    def _experiment_from_name(self) -> str:
        if self._experiment_name is None:
            return DEFAULT_EXPERIMENT_ID
        by_name = "/api/2.0/mlflow/experiments/get-by-name"
        params = {"experiment_name": self._experiment_name}
        found = self._call("GET", by_name, params=params, missing_ok=True)
        if found is None:
            created = self._call("POST", "/api/2.0/mlflow/experiments/create",
                                 json={"name": self._experiment_name}, missing_ok=True, conflict_ok=True)
            if created is not None:
                return str(created.json()["experiment_id"])
            found = self._call("GET", by_name, params=params)
        return str(found.json()["experiment"]["experiment_id"])

    def _call(self, method: str, endpoint: str, *, missing_ok: bool = False, conflict_ok: bool = False,
              **kwargs: Any) -> Any:
        try:
            response = compat.http_call(self._creds, method, endpoint, timeout=self._timeout, **kwargs)
        except compat.MlflowException as error:
            raise TransientError(error.message) from error
        status = response.status_code
        if status == 200:
            return response
        if (missing_ok and status == 404) or (conflict_ok and _already_exists(response)):
            return None
        cause = f"HTTP {status} from {method} {endpoint}: {_error_message(response)}"
        if status in (408, 429) or status >= 500:
            raise TransientError(cause)
        raise PermanentError(cause)


def _already_exists(response: Any) -> bool:
    return "RESOURCE_ALREADY_EXISTS" in response.text


def _error_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:500]
    return str(body)[:500]
