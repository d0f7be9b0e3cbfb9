"""The program's compiled state on disk: DSPy's JSON state (default) or DSPy's pickle, sha256-checked."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION
from mlflow.exceptions import MlflowException

_logger = logging.getLogger(__name__)

PICKLE_WARNING = (
    "serialization='pickle' stores the program with cloudpickle: loading it runs code from the file. "
    "Load such models only from sources you trust; prefer the default serialization='state'."
)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, obj: Any, what: str) -> str:
    """Write ``obj`` as JSON; returns its sha256."""
    try:
        data = json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise MlflowException.invalid_parameter_value(
            f"The {what} is not JSON-serializable ({exc}); use serialization='pickle' if you trust every loader."
        ) from exc
    Path(path).write_text(data + "\n", encoding="utf-8")
    return sha256_of(path)


def verify(path: str | Path, expected: str | None) -> None:
    """Refuse a file whose sha256 differs from the one recorded in MLmodel."""
    if not expected:
        raise MlflowException(f"No sha256 is recorded in MLmodel for {os.path.basename(path)}; refusing to load it.")
    if not os.path.exists(path):
        raise MlflowException(f"The model file {path} is missing.")
    actual = sha256_of(path)
    if actual != expected:
        raise MlflowException(
            f"{os.path.basename(path)} was modified after saving (sha256 {actual[:12]}… differs from "
            f"{expected[:12]}… recorded in MLmodel); refusing to load it."
        )


def read_json(path: str | Path, expected_sha256: str | None) -> Any:
    verify(path, expected_sha256)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MlflowException(f"{path} is not valid JSON: {exc}") from exc


def program_state(program: Any) -> dict[str, Any]:
    """``program.dump_state()`` without LMs (saved separately, without secrets)."""
    state = program.dump_state()
    for value in [state, *state.values()]:  # a bare Predict's state is flat
        if isinstance(value, dict) and "lm" in value:
            value["lm"] = None
    return state


def apply_state(program: Any, state: Any) -> None:
    if not isinstance(state, dict):
        raise MlflowException("The saved program state is not a JSON object; refusing to load it.")
    try:
        program.load_state(state)
    except Exception as exc:
        raise MlflowException(
            f"The saved state does not fit {type(program).__qualname__} ({type(exc).__name__}: {exc}); "
            "was the program class changed since the model was saved?"
        ) from exc


def without_lms(program: Any) -> Any:
    """A deep copy of ``program`` with no LMs and no bound adapter, for pickling."""
    clone = program.deepcopy()
    for _, predictor in clone.named_predictors():
        predictor.lm = None
    clone.__dict__.pop("forward", None)
    clone.__dict__.pop("aforward", None)
    return clone


def code_execution_allowed() -> bool:
    """MLflow's pickle gate (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``) and ``MLFLOW_ALLOW_MODEL_CODE_EXECUTION``."""
    flag = os.environ.get("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "true").strip().lower()
    return MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() and flag not in {"false", "0", "no", "off"}


def refuse_unless_code_execution_allowed(what: str) -> None:
    if not code_execution_allowed():
        raise MlflowException(
            f"{what} is stored with pickle, and loading it would run code from the file, but code execution "
            "is disabled (MLFLOW_ALLOW_MODEL_CODE_EXECUTION=false or MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false). "
            "Re-save the program with dspy_otel.flavor.save_model(..., serialization='state')."
        )
    _logger.warning("Loading %s from pickle. %s", what, PICKLE_WARNING)
