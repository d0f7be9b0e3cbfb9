"""``save_model`` / ``log_model``: a DSPy program as an MLflow model, on MLflow's own model machinery."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import types
from typing import Any

import yaml
from mlflow import pyfunc
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelInputExample, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME, ModelInfo
from mlflow.models.utils import _save_example
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
from mlflow.tracking._model_registry import DEFAULT_AWAIT_MAX_SLEEP_SECONDS
from mlflow.utils.environment import (
    _CONDA_ENV_FILE_NAME,
    _CONSTRAINTS_FILE_NAME,
    _PYTHON_ENV_FILE_NAME,
    _REQUIREMENTS_FILE_NAME,
    _mlflow_conda_env,
    _process_conda_env,
    _process_pip_requirements,
    _PythonEnv,
)
from mlflow.utils.file_utils import get_total_file_size, write_to
from mlflow.utils.model_utils import _validate_and_copy_code_paths
from mlflow.utils.requirements_utils import _get_pinned_requirement

from dspy_otel.flavor import _schema, _state
from dspy_otel.flavor._recipe import program_recipe
from dspy_otel.flavor._settings import capture_settings

FLAVOR_NAME = "dspy_otel"
SERIALIZATIONS = ("state", "pickle")
STATE_FILE = "data/state.json"
SETTINGS_FILE = "data/settings.json"
PICKLE_DIR = "data/program"

_logger = logging.getLogger(__name__)


def get_default_pip_requirements() -> list[str]:
    return [_get_pinned_requirement("dspy"), _get_pinned_requirement("dspy-otel")]


def get_default_conda_env() -> dict[str, Any]:
    return _mlflow_conda_env(additional_pip_deps=get_default_pip_requirements())


def _check_arguments(path: str, task: str | None, serialization: str) -> None:
    if serialization not in SERIALIZATIONS:
        raise MlflowException.invalid_parameter_value(
            f"Unknown serialization {serialization!r}; use one of {list(SERIALIZATIONS)}."
        )
    if task is not None and task not in _schema.TASKS:
        raise MlflowException.invalid_parameter_value(f"Unknown task {task!r}; use None or one of {list(_schema.TASKS)}.")
    if os.path.exists(path) and (not os.path.isdir(path) or any(os.scandir(path))):
        raise MlflowException(f"Path '{path}' already exists and is not empty; choose a new path.",
                              error_code=RESOURCE_ALREADY_EXISTS)


def _program_from_code(code_path: str, model_config: dict[str, Any] | None) -> Any:
    from mlflow.models.utils import _load_model_code_path, _validate_and_get_model_code_path

    with tempfile.TemporaryDirectory() as tmp:
        resolved = _validate_and_get_model_code_path(code_path, tmp)
        return resolved, _load_model_code_path(resolved, model_config)


def _write_environment(path: str, conda_env: Any, pip_requirements: Any, extra_pip_requirements: Any) -> None:
    if conda_env is None:
        default = get_default_pip_requirements() if pip_requirements is None else None
        conda_env, requirements, constraints = _process_pip_requirements(
            default, pip_requirements, extra_pip_requirements
        )
    else:
        conda_env, requirements, constraints = _process_conda_env(conda_env)
    with open(os.path.join(path, _CONDA_ENV_FILE_NAME), "w") as f:
        yaml.safe_dump(conda_env, stream=f, default_flow_style=False)
    if constraints:
        write_to(os.path.join(path, _CONSTRAINTS_FILE_NAME), "\n".join(constraints))
    write_to(os.path.join(path, _REQUIREMENTS_FILE_NAME), "\n".join(requirements))
    _PythonEnv.current().to_yaml(os.path.join(path, _PYTHON_ENV_FILE_NAME))


def save_model(
    dspy_model: Any,
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    signature: ModelSignature | None = None,
    input_example: ModelInputExample | None = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization: str = "state",
    model_config: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
) -> None:
    """Save a DSPy program (or the path of a Python file that builds one: models from code) to ``path``.

    ``serialization="state"`` (default) stores the class import path, constructor arguments
    (``model_config``) and DSPy's JSON state; ``"pickle"`` stores DSPy's cloudpickle of the
    program (loading it runs code; a warning is logged). LM settings are saved through an
    allow-list; credentials are read from the environment at load time. Nothing is written
    at ``path`` unless everything succeeds.
    """
    import dspy

    path = os.path.abspath(os.fspath(path))
    _check_arguments(path, task, serialization)
    code_file = None
    if isinstance(dspy_model, (str, os.PathLike)):
        code_file, dspy_model = _program_from_code(os.fspath(dspy_model), model_config)
    if not isinstance(dspy_model, dspy.Module):
        raise MlflowException.invalid_parameter_value(
            f"dspy_model must be a dspy.Module (or the path of a file that calls mlflow.models.set_model with "
            f"one), got {type(dspy_model).__module__}.{type(dspy_model).__qualname__}."
        )
    signature = signature or _schema.infer_signature(dspy_model, task)
    if input_example is not None:
        _schema.validate_example(input_example, signature, task)

    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}-", dir=parent)
    try:
        _save_into(staging, dspy_model, code_file, task=task, signature=signature, input_example=input_example,
                   code_paths=code_paths, metadata=metadata, serialization=serialization,
                   model_config=model_config, mlflow_model=mlflow_model or Model())
        _write_environment(staging, conda_env, pip_requirements, extra_pip_requirements)
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _save_into(root: str, program: Any, code_file: str | None, *, task: str | None, signature: ModelSignature,
               input_example: Any, code_paths: list[str] | None, metadata: dict[str, Any] | None,
               serialization: str, model_config: dict[str, Any] | None, mlflow_model: Model) -> None:
    import dspy

    os.makedirs(os.path.join(root, "data"))
    conf: dict[str, Any] = {"serialization": serialization, "dspy_version": dspy.__version__}
    if task:
        conf["task"] = task
    if code_file:
        conf["model_code"] = os.path.basename(code_file)
        shutil.copy2(code_file, os.path.join(root, conf["model_code"]))
        if model_config:
            conf["model_config"] = model_config
    elif serialization == "state":
        conf["program"] = program_recipe(program, model_config)
    if serialization == "state":
        conf["state_file"] = STATE_FILE
        conf["state_sha256"] = _state.write_json(os.path.join(root, STATE_FILE), _state.program_state(program),
                                                 "program state")
    else:
        _logger.warning(_state.PICKLE_WARNING)
        _state.without_lms(program).save(os.path.join(root, PICKLE_DIR), save_program=True)
        conf["pickle_dir"] = PICKLE_DIR
        conf["pickle_sha256"] = _state.sha256_of(os.path.join(root, PICKLE_DIR, "program.pkl"))
    conf["settings_file"] = SETTINGS_FILE
    conf["settings_sha256"] = _state.write_json(os.path.join(root, SETTINGS_FILE), capture_settings(program),
                                                "LM settings")

    mlflow_model.signature = signature
    if input_example is not None:
        _save_example(mlflow_model, input_example, root)
    mlflow_model.metadata = {**(mlflow_model.metadata or {}), **(metadata or {})}
    if task:
        mlflow_model.metadata["task"] = task
    mlflow_model.metadata = mlflow_model.metadata or None
    code_dir = _validate_and_copy_code_paths(code_paths, root)
    mlflow_model.add_flavor(FLAVOR_NAME, code=code_dir, **conf)
    pyfunc.add_to_model(mlflow_model, loader_module="dspy_otel.flavor", code=code_dir,
                        conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME, streamable=True)
    if size := get_total_file_size(root):
        mlflow_model.model_size_bytes = size
    mlflow_model.save(os.path.join(root, MLMODEL_FILE_NAME))


def _save_for_log(path: str, mlflow_model: Model, validate_serving_input: bool = False, **kwargs: Any) -> None:
    save_model(path=path, mlflow_model=mlflow_model, **kwargs)


# Model.log calls ``flavor.save_model``; this flavor never runs the program on the input example.
_LOG_FLAVOR = types.SimpleNamespace(__name__=__name__.rsplit(".", 1)[0], save_model=_save_for_log)


def log_model(
    dspy_model: Any,
    name: str | None = None,
    *,
    task: str | None = None,
    signature: ModelSignature | None = None,
    input_example: ModelInputExample | None = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization: str = "state",
    model_config: dict[str, Any] | None = None,
    registered_model_name: str | None = None,
    await_registration_for: int = DEFAULT_AWAIT_MAX_SLEEP_SECONDS,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
) -> ModelInfo:
    """Log a DSPy program as an MLflow model (see :func:`save_model`); returns its ``ModelInfo``.

    The input example is stored and checked against the signature, never run against the LM.
    """
    return Model.log(
        artifact_path=None, name=name, flavor=_LOG_FLAVOR, flavor_name=FLAVOR_NAME,
        registered_model_name=registered_model_name, await_registration_for=await_registration_for,
        params=params, tags=tags, model_type=model_type, step=step, model_id=model_id,
        dspy_model=dspy_model, task=task, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements, conda_env=conda_env,
        code_paths=code_paths, metadata=metadata, serialization=serialization, model_config=model_config,
        validate_serving_input=False,
    )
