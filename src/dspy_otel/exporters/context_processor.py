"""``MlflowContextProcessor``: the MLflow run and model a trace belongs to, captured when its root span starts.

A trace belongs to the run and model active while it ran, not to whatever is active when its
spans are exported later (the run may have ended by then). This span processor looks both up on
the application thread when a root span starts, as MLflow's own tracing does (the latest active
run in any thread; the active model in any thread, else the pyfunc prediction context's), and
records them on the root span as ``mlflow.sourceRun`` / ``mlflow.modelId``, the trace metadata
keys MLflow's own traces carry. :class:`~dspy_otel.exporters.MlflowSpanExporter` writes them into
the trace. It keeps MLflow out of the instrumentor: only this processor (added by
``dspy_otel.autolog()``) asks MLflow.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from dspy_otel.exporters import _mlflow_compat as compat

_logger = logging.getLogger(__name__)

RUN_ATTRIBUTE = compat.SOURCE_RUN_KEY
MODEL_ATTRIBUTE = compat.MODEL_ID_KEY


class MlflowContextProcessor(SpanProcessor):
    """Sets ``mlflow.sourceRun`` and ``mlflow.modelId`` on root spans from MLflow's state at their start."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if span.parent is not None:
            return
        try:
            run_id = compat.active_run_id()
            model_id = compat.active_model_id()
        except Exception:  # noqa: BLE001 - tracing must never break the application
            _logger.debug("could not read MLflow's active run / model", exc_info=True)
            return
        if run_id:
            span.set_attribute(RUN_ATTRIBUTE, run_id)
        if model_id:
            span.set_attribute(MODEL_ATTRIBUTE, model_id)

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do at the end."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
