"""``MlflowSpanExporter``: OpenTelemetry spans → complete MLflow traces, in a SQL store or a tracking server.

``export()`` only queues the batch in a bounded buffer and returns: it never does I/O on the
caller's thread and never blocks the ``BatchSpanProcessor`` worker, so that processor's own queue
does not overflow while MLflow is slow. One writer thread drains the buffer, every backlog in one
store transaction or HTTP request (up to ``max_batch_spans``), converting and storing the spans
the way MLflow's OTLP ingest does (see :mod:`._mlflow_compat`). A destination that is down, slow or
answering 5xx is retried with exponential backoff for up to ``retry_timeout`` seconds, with one log
line when the outage starts and one when it ends; a 4xx is logged with its cause. What cannot be
delivered (refused, retries exhausted, buffer full, shutdown) is counted in :attr:`dropped_spans`
and logged. ``force_flush()`` and ``shutdown()`` wait for delivery of what is queued.

Spans of one trace may arrive in any order and over several exports: the store assembles them
into one trace by id and upserts re-sent spans, so nothing is duplicated.

Run and model: a root span carrying ``mlflow.sourceRun`` / ``mlflow.modelId`` (set at its start by
:class:`~dspy_otel.exporters.MlflowContextProcessor`) links its trace to that run and model, in the
trace metadata as MLflow's own traces have them (a tracking server gets the run as the
``x-mlflow-run-id`` header; its OTLP ingest cannot take the model id). Without them, the run
active when the root is exported is used, unless ``link_run_at_export=False``.

Which span processor: ``export()`` is a cheap enqueue, so ``SimpleSpanProcessor`` is the lossless
choice (what ``dspy_otel.autolog()`` uses). Behind ``BatchSpanProcessor`` (what
``opentelemetry-instrument`` uses), that processor's own queue (``OTEL_BSP_MAX_QUEUE_SIZE``, 2,048
spans by default) drops spans in a tight loop before they reach this exporter; raise it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from dspy_otel.exporters import _mlflow_compat as compat
from dspy_otel.exporters._buffer import Batch, SpanBuffer
from dspy_otel.exporters.context_processor import MODEL_ATTRIBUTE, RUN_ATTRIBUTE
from dspy_otel.exporters._convert import to_otlp
from dspy_otel.exporters._destinations import PermanentError, make_destination

_logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_MAX_BUFFER_SPANS = 32_768
DEFAULT_MAX_BATCH_SPANS = 4_096
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0


class MlflowSpanExporter(SpanExporter):
    """Write OpenTelemetry spans as MLflow traces (one per OTel trace id).

    Args:
        tracking_uri: ``sqlite:///…``, ``postgresql://…`` (any MLflow SQL store) or ``http(s)://``
            (a tracking server, through its ``/v1/traces`` OTLP endpoint); else ``MLFLOW_TRACKING_URI``,
            else ``sqlite:///mlflow.db`` in the working directory. The file store is refused.
        experiment_id: the experiment to write to.
        experiment_name: used when no id is given; created if missing. Without either argument,
            ``MLFLOW_EXPERIMENT_ID``, then ``MLFLOW_EXPERIMENT_NAME``, then MLflow's default experiment ``0``.
        run_id: link every trace to this run; by default the run captured on the root span at its
            start (:class:`~dspy_otel.exporters.MlflowContextProcessor`), else the run active (in
            any thread) when the root span is exported.
        link_run_at_export: ``False`` when root spans without a captured run belong to no run (set
            by ``autolog()``, whose context processor captures every root's run).
        max_buffer_spans: spans held in memory waiting for delivery (including the batch being
            retried); beyond it new spans are dropped and counted.
        max_batch_spans: most spans written in one transaction / request.
        retry_timeout: seconds a batch is retried while the destination is unavailable.
        request_timeout: seconds for one HTTP request to a tracking server.
        shutdown_timeout: seconds ``shutdown()`` waits for queued spans to be delivered.
    """

    def __init__(self, tracking_uri: str | None = None, experiment_id: str | None = None,
                 experiment_name: str | None = None, *, run_id: str | None = None, link_run_at_export: bool = True,
                 max_buffer_spans: int = DEFAULT_MAX_BUFFER_SPANS,
                 max_batch_spans: int = DEFAULT_MAX_BATCH_SPANS, retry_timeout: float = 120.0,
                 request_timeout: float = 30.0, shutdown_timeout: float = 30.0) -> None:
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        if experiment_id is None and experiment_name is None:
            experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or None
            experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
        self._destination = make_destination(self.tracking_uri, experiment_id, experiment_name, request_timeout)
        self._run_id = run_id
        self._link_run_at_export = link_run_at_export
        self._buffer = SpanBuffer(max_buffer_spans)
        self._max_batch_spans = max(1, max_batch_spans)
        self._retry_timeout = retry_timeout
        self._request_timeout = request_timeout
        self._shutdown_timeout = shutdown_timeout
        self._counts_lock = threading.Lock()
        self._exported = 0
        self._dropped = 0
        self._overflowing = False
        self._outage_since: float | None = None
        self._hurry = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._is_shutdown = False

    @property
    def exported_spans(self) -> int:
        """Spans written to MLflow so far."""
        return self._exported

    @property
    def dropped_spans(self) -> int:
        """Spans that will never reach MLflow: refused, retries exhausted, buffer full or shut down."""
        return self._dropped

    @property
    def pending_spans(self) -> int:
        """Spans queued or being written."""
        return self._buffer.size

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._is_shutdown:
            self._drop(len(spans), "export() after shutdown()")
            return SpanExportResult.FAILURE
        try:
            run_id = (compat.active_run_id() if self._link_run_at_export and not self._run_id
                      and any(span.parent is None for span in spans) else None)
            self._start_writer()
            rejected = self._buffer.put(list(spans), run_id)
        except Exception:
            _logger.exception("MlflowSpanExporter could not queue %d spans; they are dropped", len(spans))
            self._drop(len(spans))
            return SpanExportResult.FAILURE
        if rejected:
            if not self._overflowing:
                self._overflowing = True
                _logger.warning("MlflowSpanExporter buffer is full (%d spans waiting for %s); new spans are "
                                "dropped until it drains (dropped so far: %d)", self._buffer.max_spans,
                                self._destination.description, self._dropped + rejected)
            self._drop(rejected)
            return SpanExportResult.FAILURE
        self._overflowing = False
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every queued span is delivered (or given up); ``False`` on timeout."""
        return self._buffer.wait_empty(timeout_millis / 1000)

    def shutdown(self) -> None:
        """Deliver what is queued (up to ``shutdown_timeout``), then stop; the rest is dropped and counted."""
        if self._is_shutdown:
            return
        self._is_shutdown = True
        self._buffer.wait_empty(self._shutdown_timeout)
        self._hurry.set()
        discarded = self._buffer.close()
        if self._writer is not None:
            self._writer.join(self._request_timeout + 5)
        if discarded:
            self._drop(discarded, "shutdown() before they could be delivered")

    # --- writer thread ---------------------------------------------------------------------

    def _start_writer(self) -> None:
        if self._writer is not None:
            return
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="dspy-otel-mlflow-exporter", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while (batches := self._buffer.take(self._max_batch_spans)) is not None:
            count = sum(len(batch.spans) for batch in batches)
            try:
                for run_id, (spans, roots) in _group_by_run(batches, self._run_id).items():
                    if self._deliver(spans, run_id, roots):
                        with self._counts_lock:
                            self._exported += len(spans)
                    else:
                        self._drop(len(spans))
            except Exception:  # a bug here must not kill the writer or lose the count
                _logger.exception("MlflowSpanExporter failed on %d spans; they are dropped", count)
                self._drop(count)
            finally:
                self._buffer.done(count)

    def _deliver(self, spans: list[ReadableSpan], run_id: str | None, roots: dict[str, str | None]) -> bool:
        request = to_otlp(spans)
        give_up_at = time.monotonic() + self._retry_timeout
        delay = INITIAL_BACKOFF_S
        while True:
            try:
                self._destination.write(request, run_id, roots)
            except PermanentError as error:
                _logger.error("MLflow at %s refused %d spans, which are dropped: %s",
                              self._destination.description, len(spans), error)
                return False
            except Exception as error:  # TransientError, or anything unforeseen: bounded retries
                self._outage_started(error)
                if self._hurry.is_set() or time.monotonic() + delay > give_up_at:
                    _logger.error("MlflowSpanExporter gave up on %d spans for %s after retrying: %s",
                                  len(spans), self._destination.description, error)
                    return False
                self._hurry.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
            else:
                self._outage_ended()
                return True

    def _outage_started(self, error: Exception) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            _logger.warning("MLflow at %s is unavailable (%s); retrying with backoff for up to %.0fs per batch, "
                            "new spans are buffered (up to %d)", self._destination.description, error,
                            self._retry_timeout, self._buffer.max_spans)

    def _outage_ended(self) -> None:
        if self._outage_since is not None:
            _logger.warning("MLflow at %s is available again after %.1fs; buffered spans are being delivered",
                            self._destination.description, time.monotonic() - self._outage_since)
            self._outage_since = None

    def _drop(self, count: int, reason: str | None = None) -> None:
        with self._counts_lock:
            self._dropped += count
        if reason:
            _logger.warning("MlflowSpanExporter dropped %d spans: %s", count, reason)


def _group_by_run(batches: list[Batch], fixed_run: str | None,
                  ) -> dict[str | None, tuple[list[ReadableSpan], dict[str, str | None]]]:
    """Spans by the run of their trace (known when the root is among them), each group with its
    roots' MLflow trace ids → captured model id. One group (``None`` or the one run) in the common case."""
    run_of_trace: dict[int, str | None] = {}
    for batch in batches:
        for span in batch.spans:
            if span.parent is None:
                attributes = span.attributes or {}
                run_of_trace[span.context.trace_id] = (fixed_run or attributes.get(RUN_ATTRIBUTE)
                                                       or batch.run_id)
    groups: dict[str | None, tuple[list[ReadableSpan], dict[str, str | None]]] = {}
    for batch in batches:
        for span in batch.spans:
            run_id = run_of_trace.get(span.context.trace_id)
            spans, roots = groups.get(run_id) or groups.setdefault(run_id, ([], {}))
            spans.append(span)
            if span.parent is None:
                roots[compat.mlflow_trace_id(span.context.trace_id)] = (span.attributes or {}).get(MODEL_ATTRIBUTE)
    return groups
