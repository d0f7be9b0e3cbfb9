"""``load_model`` and the pyfunc loader; also reads models logged by ``mlflow.dspy``."""

from __future__ import annotations

import logging
import os
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import _update_active_model_id_based_on_mlflow_model
from mlflow.tracking.artifact_utils import _download_artifact_from_uri
from mlflow.utils.model_utils import _add_code_from_conf_to_system_path

from dspy_otel.flavor import _state
from dspy_otel.flavor._pyfunc import DspyPyfuncModel
from dspy_otel.flavor._recipe import build_program
from dspy_otel.flavor._settings import attach_settings, bind_adapter
from dspy_otel.flavor.save import FLAVOR_NAME

_logger = logging.getLogger(__name__)
_MLFLOW_DSPY_FLAVOR = "dspy"


def _build(root: str, conf: dict[str, Any]) -> Any:
    serialization = conf.get("serialization")
    if serialization == "state":
        if "model_code" in conf:
            from mlflow.models.utils import _load_model_code_path

            program = _load_model_code_path(os.path.join(root, conf["model_code"]), conf.get("model_config"))
        else:
            program = build_program(conf["program"])
        _state.apply_state(program, _state.read_json(os.path.join(root, conf["state_file"]), conf.get("state_sha256")))
        return program
    if serialization == "pickle":
        import dspy

        pickle_dir = os.path.join(root, conf["pickle_dir"])
        _state.verify(os.path.join(pickle_dir, "program.pkl"), conf.get("pickle_sha256"))
        _state.refuse_unless_code_execution_allowed("This model")
        return dspy.load(pickle_dir, allow_pickle=True)
    raise MlflowException(f"Unknown serialization {serialization!r} in MLmodel; this dspy-otel cannot load it.")


def _load_ours(root: str, conf: dict[str, Any]) -> Any:
    settings = _state.read_json(os.path.join(root, conf["settings_file"]), conf.get("settings_sha256"))
    _add_code_from_conf_to_system_path(root, conf)
    return attach_settings(_build(root, conf), settings)


def _load_mlflow_dspy(root: str) -> Any:
    """A model logged by ``mlflow.dspy`` (always pickle): settings attached to the program, not global."""
    from mlflow.dspy.load import _load_model

    _state.refuse_unless_code_execution_allowed("This model, logged by mlflow.dspy,")
    wrapper = _load_model(root)
    program, settings = wrapper.model, wrapper.dspy_settings
    lm = settings.get("lm")
    for _, predictor in program.named_predictors():
        predictor.lm = predictor.lm or lm
    if settings.get("adapter") is not None:
        bind_adapter(program, settings["adapter"])
    return program


def _load_local(root: str) -> tuple[Any, str | None]:
    mlflow_model = Model.load(root)
    flavors = mlflow_model.flavors
    if FLAVOR_NAME in flavors:
        conf = flavors[FLAVOR_NAME]
        program, task = _load_ours(root, conf), conf.get("task")
    elif _MLFLOW_DSPY_FLAVOR in flavors:
        program, task = _load_mlflow_dspy(root), flavors[_MLFLOW_DSPY_FLAVOR].get("inference_task")
    else:
        raise MlflowException(
            f"The model at {root} is not a DSPy model (its flavors are {sorted(flavors)}); "
            f"expected '{FLAVOR_NAME}' or '{_MLFLOW_DSPY_FLAVOR}'."
        )
    _update_active_model_id_based_on_mlflow_model(mlflow_model)
    return program, task


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load the DSPy program saved at ``model_uri`` with its compiled state and saved LMs/adapter.

    The global ``dspy.settings`` is left untouched: LMs are set on the program's predictors and a
    saved adapter is bound to the program. Credentials come from the environment.
    """
    root = _download_artifact_from_uri(artifact_uri=model_uri, output_path=dst_path)
    return _load_local(root)[0]


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> DspyPyfuncModel:
    """The ``python_function`` loader (``mlflow.pyfunc.load_model``, ``mlflow models serve``)."""
    program, task = _load_local(os.path.dirname(path) if os.path.isfile(path) else path)
    return DspyPyfuncModel(program, task)
