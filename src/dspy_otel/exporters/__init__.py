"""Exporters that write OpenTelemetry spans as MLflow traces (needs the ``dspy-otel[mlflow]`` extra)."""

from dspy_otel.exporters.context_processor import MlflowContextProcessor
from dspy_otel.exporters.mlflow_span_exporter import MlflowSpanExporter

__all__ = ["MlflowContextProcessor", "MlflowSpanExporter"]
