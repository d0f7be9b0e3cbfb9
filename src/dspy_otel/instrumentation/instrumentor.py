"""``DSPyInstrumentor``: the OpenTelemetry ``BaseInstrumentor`` for DSPy."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.adapters import AdapterHandler, AdapterStepRecorder, fallback_wrapper
from dspy_otel.instrumentation.config import InstrumentationConfig
from dspy_otel.instrumentation.dspy_compat import RESULT_HOOKS, DSPyClasses, dspy_classes
from dspy_otel.instrumentation.evaluation import CompileHandler, EvaluateHandler
from dspy_otel.instrumentation.lm import LMHandler, record_result
from dspy_otel.instrumentation.metrics import GenAIMetrics
from dspy_otel.instrumentation.modules import ModuleHandler
from dspy_otel.instrumentation.patching import Patcher
from dspy_otel.instrumentation.propagation import executor_wrapper, unbatchify_wrapper
from dspy_otel.instrumentation.tools import EmbedderHandler, RetrieverHandler, ToolHandler
from dspy_otel.instrumentation.tracing import Telemetry
from dspy_otel.version import __version__

logger = logging.getLogger("dspy_otel.instrumentation")

_instruments = ("dspy >= 3.4, < 4",)
CALL_METHODS = ("__call__", "acall")


class DSPyInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces DSPy programs: modules, predictors, adapters, LMs, tools, retrievers, evaluation, optimizers.

    ``DSPyInstrumentor().instrument(tracer_provider=None, meter_provider=None, capture_content=None,
    semconv=None, max_content_length=None, redact_keys=None)``; ``uninstrument()`` restores every
    original method. Settings left ``None`` come from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
    ``DSPY_OTEL_SEMCONV``, ``DSPY_OTEL_MAX_CONTENT_LENGTH`` and ``DSPY_OTEL_REDACT_KEYS``.
    """

    # BaseInstrumentor is a singleton whose __init__ runs on every DSPyInstrumentor() call, so the
    # state lives in class-level defaults that only instrument()/uninstrument() replace.
    _patcher: Patcher | None = None
    _telemetry: Telemetry | None = None
    config: InstrumentationConfig | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        self._patcher = Patcher()
        try:
            self.config = InstrumentationConfig.resolve(
                capture_content=kwargs.get("capture_content"),
                semconv=kwargs.get("semconv"),
                max_content_length=kwargs.get("max_content_length"),
                redact_keys=kwargs.get("redact_keys"),
            )
            tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"),
                                      schema_url=attr.SEMCONV_SCHEMA_URL)
            self._telemetry = Telemetry(tracer, self.config, _metrics(kwargs.get("meter_provider")))
            self._install(self._patcher, dspy_classes(), self._telemetry)
        except Exception:  # noqa: BLE001 - instrumenting must never break the program
            logger.warning("dspy-otel: instrumentation failed; DSPy runs untraced", exc_info=True)
            self._patcher.restore()

    def _install(self, patch: Patcher, dspy: DSPyClasses, telemetry: Telemetry) -> None:
        modules = ModuleHandler(telemetry, dspy.Predict, dspy.ReAct)
        for method in CALL_METHODS:
            patch.trace(dspy.Module, method, modules)
            patch.trace(dspy.BaseLM, method, LMHandler(telemetry, dspy.LM))
            patch.trace(dspy.Adapter, method, AdapterHandler(telemetry))
            if dspy.Tool is not None:
                patch.trace(dspy.Tool, method, ToolHandler(telemetry))
            if dspy.Embedder is not None:
                patch.trace(dspy.Embedder, method, EmbedderHandler(telemetry))
        for step in ("format", "parse"):
            patch.wrap_hierarchy(dspy.Adapter, step, AdapterStepRecorder(telemetry, step))
        if dspy.ChatAdapter is not None:
            patch.wrap(dspy.ChatAdapter, "_make_json_adapter_fallback", fallback_wrapper)
        retrievers = RetrieverHandler(telemetry)
        for retriever in (dspy.Retrieve, dspy.Embeddings):
            if retriever is not None:
                patch.trace(retriever, "__call__", retrievers)
        if dspy.Evaluate is not None:
            patch.trace(dspy.Evaluate, "__call__", EvaluateHandler(telemetry))
        if dspy.Teleprompter is not None:
            compiles = CompileHandler(telemetry)
            patch.trace_hierarchy(dspy.Teleprompter, "compile", compiles,
                                  include=lambda cls: cls is not dspy.Teleprompter)
        if dspy.ParallelExecutor is not None:
            patch.wrap(dspy.ParallelExecutor, "execute", executor_wrapper)
        if dspy.Unbatchify is not None:
            patch.wrap(dspy.Unbatchify, "__call__", unbatchify_wrapper)
        _install_result_hooks(patch)
        logger.debug("dspy-otel: %d DSPy methods wrapped", len(patch))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._telemetry is not None:
            self._telemetry.enabled = False
            self._telemetry = None
        if self._patcher is not None:
            self._patcher.restore()
            self._patcher = None


def _metrics(meter_provider: metrics.MeterProvider | None) -> GenAIMetrics | None:
    """GenAI metrics through ``meter_provider`` or the global one; ``None`` (no per-call metric work) when
    neither is configured, i.e. the global provider is still OpenTelemetry's placeholder or a no-op."""
    provider = meter_provider or metrics.get_meter_provider()
    if type(provider).__name__ in {"_ProxyMeterProvider", "NoOpMeterProvider"}:
        return None
    return GenAIMetrics(provider.get_meter(__name__, __version__, schema_url=attr.SEMCONV_SCHEMA_URL))


def _install_result_hooks(patch: Patcher) -> None:
    """Wrap the DSPy functions that receive each LM call's result (``RESULT_HOOKS``)."""

    for module_name, function, lm_index, result_index in RESULT_HOOKS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue

        def hook(wrapped: Any, instance: Any, args: tuple, kwargs: dict,
                 lm_index: int = lm_index, result_index: int = result_index) -> Any:
            output = wrapped(*args, **kwargs)
            try:
                record_result(args[lm_index], args[result_index])
            except Exception:  # noqa: BLE001
                logger.debug("dspy-otel: could not read the LM result", exc_info=True)
            return output

        patch.wrap(module, function, hook)  # type: ignore[arg-type]
