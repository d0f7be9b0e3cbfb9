"""Fixtures for the three ways in: a real ``mlflow server``, rotel pipelines into it, trace polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dspy_otel.testing.mlflow_server import MlflowServer
from dspy_otel.testing.rotel import RotelCollector, rotel_binary

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_CONFIG = REPO / "collector-config"
ARRIVAL_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with MlflowServer(tmp_path_factory.mktemp("ways-in-mlflow")) as server:
        yield server


@pytest.fixture
def experiment_id(mlflow_server: MlflowServer) -> str:
    """A fresh experiment on the shared server, so tests never see each other's traces."""
    from mlflow import MlflowClient

    return MlflowClient(mlflow_server.url).create_experiment(f"ways-in-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def require_rotel() -> None:
    if rotel_binary() is None:
        pytest.skip("rotel-agent not installed (pip install rotel)")


@pytest.fixture
def rotel_to_mlflow(require_rotel: None, mlflow_server: MlflowServer, experiment_id: str,
                    ) -> Iterator[Callable[..., RotelCollector]]:
    """``rotel_to_mlflow(*overlays)``: a started rotel running ``collector-config/rotel/mlflow.env`` (+ overlays)."""
    started: list[RotelCollector] = []

    def start(*overlays: str) -> RotelCollector:
        files = [COLLECTOR_CONFIG / "rotel" / "mlflow.env", *(COLLECTOR_CONFIG / "rotel" / o for o in overlays)]
        variables = {"MLFLOW_TRACKING_URI": mlflow_server.url, "MLFLOW_EXPERIMENT_ID": experiment_id}
        collector = RotelCollector(files, variables, cwd=REPO)
        started.append(collector)
        return collector.start()

    yield start
    for collector in started:
        collector.__exit__(None, None, None)


@pytest.fixture(scope="session")
def wait_for_traces() -> Callable[..., list]:
    """``wait_for_traces(tracking_uri, experiment_id, count, min_spans=1)``: poll until stored, then return them."""
    return _wait_for_traces


def _wait_for_traces(tracking_uri: str, experiment_id: str, count: int,
                     timeout: float = ARRIVAL_TIMEOUT_S, min_spans: int = 1) -> list:
    """Poll ``search_traces`` until ``count`` traces with at least ``min_spans`` spans each are stored."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    deadline = time.monotonic() + timeout
    while True:
        traces = list(client.search_traces(locations=[experiment_id], max_results=max(count, 100)))
        if len(traces) >= count and all(len(t.data.spans) >= min_spans for t in traces):
            return traces
        if time.monotonic() > deadline:
            return traces
        time.sleep(0.5)
