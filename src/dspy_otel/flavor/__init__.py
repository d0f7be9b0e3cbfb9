"""The ``dspy_otel`` MLflow model flavor: save, log, load and serve DSPy programs without pickle or secrets.

    from dspy_otel.flavor import log_model, load_model

    info = log_model(program, name="qa", input_example={"question": "What is DSPy?"})
    program = load_model(info.model_uri)          # credentials from the environment
"""

from dspy_otel.flavor.load import _load_pyfunc, load_model
from dspy_otel.flavor.save import (
    FLAVOR_NAME,
    get_default_conda_env,
    get_default_pip_requirements,
    log_model,
    save_model,
)

__all__ = [
    "FLAVOR_NAME",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
