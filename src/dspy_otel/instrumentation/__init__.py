"""OpenTelemetry instrumentation for DSPy: ``DSPyInstrumentor`` (entry point ``dspy_otel``).

Importing this package does not import DSPy; ``instrument()`` does.
"""

from dspy_otel.instrumentation.config import ContentCapture
from dspy_otel.instrumentation.instrumentor import DSPyInstrumentor

__all__ = ["ContentCapture", "DSPyInstrumentor"]
