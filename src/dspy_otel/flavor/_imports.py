"""Import paths (``module:QualName``) for classes and functions, checked both ways."""

from __future__ import annotations

import importlib
from typing import Any

from mlflow.exceptions import MlflowException


def import_path(obj: Any, what: str) -> str:
    """``module:QualName`` of ``obj``; raises if importing that path would not give ``obj`` back."""
    path = f"{obj.__module__}:{obj.__qualname__}"
    try:
        found = resolve(path, what)
    except MlflowException:
        found = None
    if found is not obj:
        raise MlflowException.invalid_parameter_value(
            f"The {what} {obj.__qualname__!r} cannot be imported back as '{path}' (defined in __main__, a "
            "notebook or inside a function?). Define it at module level in an installed package or in a file "
            "passed with code_paths=[...], or save the program as code (models from code)."
        )
    return path


def resolve(path: str, what: str) -> Any:
    """Import ``module:QualName``; raises an MlflowException naming the path when it cannot."""
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise MlflowException(
            f"Cannot import the {what} '{path}' ({exc}). Install the package that defines it, or log the "
            "model with code_paths=[...] containing its module."
        ) from exc
    return obj
