"""Zero code: ``opentelemetry-instrument python qa_app.py`` with our entry points, in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dspy_otel.testing.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

APPS = Path(__file__).resolve().parent / "apps"
# The peer DSPy instrumentations installed for the benchmarks register as "dspy": keep them out.
PEERS = "dspy"


def launcher() -> str:
    beside_python = Path(sys.executable).with_name("opentelemetry-instrument")
    found = str(beside_python) if beside_python.exists() else shutil.which("opentelemetry-instrument")
    if found is None:
        pytest.fail("opentelemetry-instrument is missing: install dspy-otel[otlp]")
    return found


def run_launched(env: dict[str, str], **settings: str) -> list[str]:
    env = {**env, "OTEL_SERVICE_NAME": "qa-app", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
           "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": PEERS, **settings}
    done = subprocess.run([launcher(), sys.executable, str(APPS / "qa_app.py")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["answers"]


def test_traces_exporter_mlflow(app_env: dict[str, str], mlflow_server: MlflowServer, experiment_id: str,
                                wait_for_traces: Callable[..., list],
                                check_program_traces: Callable[..., None]) -> None:
    answers = run_launched(app_env, OTEL_TRACES_EXPORTER="mlflow", MLFLOW_TRACKING_URI=mlflow_server.url,
                           MLFLOW_EXPERIMENT_ID=experiment_id)
    assert len(answers) == 3
    check_program_traces(wait_for_traces(mlflow_server.url, experiment_id, 3, min_spans=4))


def test_traces_exporter_otlp_straight_to_mlflow(app_env: dict[str, str], mlflow_server: MlflowServer,
                                                 experiment_id: str, wait_for_traces: Callable[..., list],
                                                 check_program_traces: Callable[..., None]) -> None:
    run_launched(app_env, OTEL_TRACES_EXPORTER="otlp",
                 OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{mlflow_server.url}/v1/traces",
                 OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
                 OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-mlflow-experiment-id={experiment_id}")
    check_program_traces(wait_for_traces(mlflow_server.url, experiment_id, 3, min_spans=4))


def test_disabled_instrumentations_turns_dspy_otel_off(app_env: dict[str, str], tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = MlflowClient(store).create_experiment("launcher-off")
    answers = run_launched(app_env, OTEL_TRACES_EXPORTER="mlflow", MLFLOW_TRACKING_URI=store,
                           MLFLOW_EXPERIMENT_ID=experiment_id,
                           OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=f"dspy_otel,{PEERS}")
    assert len(answers) == 3  # the app ran normally, the exporter was configured, and nothing was traced
    assert list(MlflowClient(store).search_traces(locations=[experiment_id])) == []
