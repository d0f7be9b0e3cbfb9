"""dspy-otel: OpenTelemetry-native observability for DSPy programs.

``import dspy_otel`` is cheap: DSPy, MLflow and the OpenTelemetry SDK load when first used.
"""

from dspy_otel.autolog import autolog
from dspy_otel.version import __version__

__all__ = ["__version__", "autolog"]
