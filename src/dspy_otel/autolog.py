"""``dspy_otel.autolog()``: trace DSPy into MLflow (and/or over OTLP) with one call, MLflow-style.

It instruments DSPy with :class:`~dspy_otel.instrumentation.DSPyInstrumentor` and adds one span
processor per destination: MLflow's exporter behind a ``SimpleSpanProcessor`` (its ``export()`` only
queues into the exporter's own bounded buffer, drained by its writer thread, so nothing is lost in
a ``BatchSpanProcessor`` queue whose worker thread is starved by a tight loop), preceded by
:class:`~dspy_otel.exporters.MlflowContextProcessor` (each trace's MLflow run and model, captured
when its root span starts); OTLP exporters, which do I/O in ``export()``, behind a
``BatchSpanProcessor``. If the application already set an OpenTelemetry SDK
``TracerProvider`` globally, the processors are added to it (its other processors and exporters
stay as they are, and every span of that provider also reaches MLflow); otherwise a private
provider is created for DSPy's spans and the global one is left alone. Calling ``autolog()``
again with the same arguments changes nothing; with other arguments it replaces the previous
setup; ``autolog(disable=True)`` undoes it. Queued spans are flushed at interpreter exit, and
spans that could not be delivered are counted (:attr:`AutologSession.dropped_spans`) and reported.

Importing this module imports neither DSPy, MLflow nor the OpenTelemetry SDK.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MLFLOW_EXPERIMENT_HEADER = "x-mlflow-experiment-id"
OTLP_TRACES_PATH = "/v1/traces"
EXIT_FLUSH_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class AutologSettings:
    """The arguments of one :func:`autolog` call (compared to make repeated calls idempotent)."""

    tracking_uri: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    otlp_endpoint: str | None = None
    otlp_headers: tuple[tuple[str, str], ...] = ()
    capture_content: bool | str = True
    semconv: str | None = None

    @property
    def to_mlflow(self) -> bool:
        """MLflow is written directly unless only an OTLP endpoint was asked for."""
        return self.otlp_endpoint is None or self.tracking_uri is not None

    def otlp_traces_url(self) -> str:
        endpoint = (self.otlp_endpoint or "").rstrip("/")
        return endpoint if endpoint.endswith(OTLP_TRACES_PATH) else endpoint + OTLP_TRACES_PATH

    def otlp_header_map(self) -> dict[str, str]:
        headers = dict(self.otlp_headers)
        if self.experiment_id and MLFLOW_EXPERIMENT_HEADER not in {k.lower() for k in headers}:
            headers[MLFLOW_EXPERIMENT_HEADER] = self.experiment_id
        return headers


@dataclass
class AutologSession:
    """What :func:`autolog` set up: the provider DSPy's spans go to and one exporter per destination."""

    settings: AutologSettings
    tracer_provider: Any
    exporters: list[Any] = field(default_factory=list)
    owns_instrumentation: bool = False
    _switch: Any = None
    _processors: list[Any] = field(default_factory=list)

    @property
    def dropped_spans(self) -> int:
        """Spans handed to an exporter that will never reach their destination."""
        return sum(getattr(exporter, "dropped_spans", 0) for exporter in self.exporters)

    @property
    def exported_spans(self) -> int:
        return sum(getattr(exporter, "exported_spans", 0) for exporter in self.exporters)

    def flush(self, timeout_millis: int = EXIT_FLUSH_TIMEOUT_MS) -> bool:
        """Deliver every span that has ended so far; ``False`` if that took longer than the timeout."""
        handed_over = all([p.force_flush(timeout_millis) for p in self._processors])
        return all([e.force_flush(timeout_millis) for e in self.exporters]) and handed_over

    def close(self) -> None:
        """Detach from the provider, deliver what is queued, shut the exporters down."""
        if self._switch is not None:
            self._switch.set(None)
        for processor in self._processors:
            processor.shutdown()


_lock = threading.RLock()
_session: AutologSession | None = None
_switches: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_private_provider: Any = None  # autolog's own TracerProvider when the application has none
_exit_hook_registered = False


def autolog(
    *,
    tracking_uri: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_headers: Mapping[str, str] | None = None,
    capture_content: bool | str = True,
    semconv: str | Sequence[str] | None = None,
    disable: bool = False,
    silent: bool = False,
) -> AutologSession | None:
    """Trace every DSPy call into MLflow, like ``mlflow.dspy.autolog()`` but as OpenTelemetry spans.

    Args:
        tracking_uri: MLflow store or server (``sqlite:///mlflow.db``, ``postgresql://…``,
            ``http://host:5000``); else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.
        experiment_name: experiment to log traces to (created if missing); or ``experiment_id``.
        experiment_id: also sent as the ``x-mlflow-experiment-id`` header to ``otlp_endpoint``.
        otlp_endpoint: also (with ``tracking_uri``) or only (without it) export OTLP/HTTP protobuf
            to this collector or MLflow server (``/v1/traces`` is appended when missing).
        otlp_headers: extra headers for ``otlp_endpoint`` (e.g. authentication).
        capture_content: record inputs, outputs and messages (on by default here, as in MLflow);
            ``False`` records structure, timings, models and token counts only.
        semconv: attribute families, e.g. ``"gen_ai,mlflow"`` (default) or ``"all"``.
        disable: undo a previous ``autolog()`` (flushing what is queued).
        silent: no log messages from the setup.

    Returns the active :class:`AutologSession`, or ``None`` after ``disable=True``.
    """
    global _session
    with _quiet(silent), _lock:
        if disable:
            _teardown()
            return None
        settings = AutologSettings(
            tracking_uri=tracking_uri, experiment_name=experiment_name, experiment_id=experiment_id,
            otlp_endpoint=otlp_endpoint, otlp_headers=tuple(sorted((otlp_headers or {}).items())),
            capture_content=capture_content,
            semconv=semconv if semconv is None or isinstance(semconv, str) else ",".join(semconv),
        )
        if _session is not None and _session.settings == settings and _instrumented():
            return _session
        _teardown()
        try:
            _session = _setup(settings)
        except Exception:
            logger.exception("dspy-otel autolog() could not be set up; DSPy runs untraced")
            _session = None
            return None
        _register_exit_hook()
        logger.info("dspy-otel autolog: tracing DSPy to %s", ", ".join(_describe(settings)))
        return _session


def _setup(settings: AutologSettings) -> AutologSession:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider

    from dspy_otel.instrumentation import DSPyInstrumentor

    global _private_provider
    global_provider = trace.get_tracer_provider()
    if isinstance(global_provider, TracerProvider):
        provider = global_provider
    else:
        provider = _private_provider = _private_provider or TracerProvider()
    session = AutologSession(settings, provider, exporters=_make_exporters(settings))
    session._processors = _make_processors(session.exporters)
    fanout = SynchronousMultiSpanProcessor()
    for processor in session._processors:
        fanout.add_span_processor(processor)
    switch = _switches.get(provider)
    if switch is None:  # one switch per provider, ever: a provider's processors cannot be removed
        switch = _SwitchProcessor()
        provider.add_span_processor(switch)
        _switches[provider] = switch
    switch.set(fanout)
    session._switch = switch

    _warn_if_mlflow_dspy_autolog()
    instrumentor = DSPyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider, capture_content=settings.capture_content,
                                semconv=settings.semconv)
        session.owns_instrumentation = True
    elif provider is not global_provider:
        logger.warning("dspy-otel autolog: DSPy is already instrumented for another TracerProvider "
                       "(e.g. by opentelemetry-instrument); its spans go there, not to autolog's destinations")
    return session


def _warn_if_mlflow_dspy_autolog() -> None:
    if "mlflow" not in sys.modules:
        return
    from mlflow.utils.autologging_utils import autologging_is_disabled

    if not autologging_is_disabled("dspy"):
        logger.warning("dspy-otel autolog: mlflow.dspy.autolog() is enabled too, so every DSPy call is "
                       "recorded twice (MLflow's callback spans and these); call "
                       "mlflow.dspy.autolog(disable=True) to keep one")


def _make_exporters(settings: AutologSettings) -> list[Any]:
    exporters: list[Any] = []
    if settings.to_mlflow:
        from dspy_otel.exporters import MlflowSpanExporter

        exporters.append(MlflowSpanExporter(settings.tracking_uri, settings.experiment_id,
                                            settings.experiment_name, link_run_at_export=False))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(_CountingExporter(OTLPSpanExporter(endpoint=settings.otlp_traces_url(),
                                                            headers=settings.otlp_header_map())))
    return exporters


def _make_processors(exporters: list[Any]) -> list[Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    processors: list[Any] = []
    for exporter in exporters:
        if isinstance(exporter, _CountingExporter):
            processors.append(BatchSpanProcessor(exporter))
        else:
            from dspy_otel.exporters import MlflowContextProcessor

            processors += [MlflowContextProcessor(), SimpleSpanProcessor(exporter)]
    return processors


def _teardown() -> None:
    global _session
    session, _session = _session, None
    if session is None:
        return
    if session.owns_instrumentation:
        from dspy_otel.instrumentation import DSPyInstrumentor

        DSPyInstrumentor().uninstrument()
    session.close()
    _report_drops(session)


def _instrumented() -> bool:
    from dspy_otel.instrumentation import DSPyInstrumentor

    return bool(DSPyInstrumentor().is_instrumented_by_opentelemetry)


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_flush_at_exit)
        _exit_hook_registered = True


def _flush_at_exit() -> None:
    session = _session
    if session is None:
        return
    try:
        if not session.flush():
            logger.warning("dspy-otel autolog: not every trace was delivered before exit")
        _report_drops(session)
    except Exception:  # noqa: BLE001 - never fail the interpreter's exit
        logger.debug("dspy-otel autolog: flush at exit failed", exc_info=True)


def _report_drops(session: AutologSession) -> None:
    if session.dropped_spans:
        logger.warning("dspy-otel autolog: %d spans could not be delivered to %s",
                       session.dropped_spans, ", ".join(_describe(session.settings)))


def _describe(settings: AutologSettings) -> list[str]:
    destinations = []
    if settings.to_mlflow:
        destinations.append(f"MLflow ({settings.tracking_uri or 'MLFLOW_TRACKING_URI / sqlite:///mlflow.db'})")
    if settings.otlp_endpoint:
        destinations.append(f"OTLP {settings.otlp_traces_url()}")
    return destinations


@contextlib.contextmanager
def _quiet(silent: bool) -> Iterator[None]:
    package_logger = logging.getLogger("dspy_otel")
    previous = package_logger.level
    if silent:
        package_logger.setLevel(logging.ERROR + 1)
    try:
        yield
    finally:
        if silent:
            package_logger.setLevel(previous)


class _SwitchProcessor:
    """A span processor registered once per provider, forwarding to whatever autolog currently uses."""

    def __init__(self) -> None:
        self._target: Any = None

    def set(self, target: Any) -> None:
        self._target = target

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        target = self._target
        if target is not None:
            target.on_start(span, parent_context=parent_context)

    def on_end(self, span: Any) -> None:
        target = self._target
        if target is not None:
            target.on_end(span)

    def _on_ending(self, span: Any) -> None:
        target = self._target
        if target is not None:
            target._on_ending(span)

    def shutdown(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            target.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        target = self._target
        return target.force_flush(timeout_millis) if target is not None else True


class _CountingExporter:
    """Wraps an OTLP exporter to count exported and undeliverable spans (the SDK exporter only logs)."""

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter
        self.exported_spans = 0
        self.dropped_spans = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self._exporter.export(spans)
        except Exception:  # noqa: BLE001 - exporting must never break the application
            logger.exception("dspy-otel: OTLP export of %d spans failed", len(spans))
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.exported_spans += len(spans)
        else:
            self.dropped_spans += len(spans)
            logger.warning("dspy-otel: %d spans could not be exported over OTLP (%d so far)",
                           len(spans), self.dropped_spans)
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))
