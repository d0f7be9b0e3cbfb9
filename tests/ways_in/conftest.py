"""Fixtures for the three ways in: a real ``mlflow server``, rotel pipelines into it, trace polling."""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dspy_otel.testing.mlflow_server import MlflowServer
from dspy_otel.testing.rotel import RotelCollector, rotel_binary

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_CONFIG = REPO / "collector-config"
APPS = Path(__file__).resolve().parent / "apps"
ARRIVAL_TIMEOUT_S = 60.0
FAKE_API_KEY = "sk-ways-in-SECRET-9f8e7d6c5b4a"


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
        # Count cheaply (no spans) until enough traces exist, then load them with their spans.
        stored = client.search_traces(locations=[experiment_id], max_results=count + 100, include_spans=False)
        if len(stored) >= count or time.monotonic() > deadline:
            traces = list(client.search_traces(locations=[experiment_id], max_results=count + 100))
            if all(len(t.data.spans) >= min_spans for t in traces) or time.monotonic() > deadline:
                return traces
        time.sleep(0.25)

@pytest.fixture(scope="session")
def program(openai_stub) -> ModuleType:
    """``apps/program.py`` (the traced DSPy program), configured for the local stub."""
    os.environ["STUB_API_BASE"] = openai_stub.base_url
    os.environ["STUB_API_KEY"] = FAKE_API_KEY
    spec = importlib.util.spec_from_file_location("ways_in_program", APPS / "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app_env(openai_stub) -> dict[str, str]:
    """Environment for an app subprocess: the stub, a fake key, no inherited OTel/MLflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MLFLOW_", "DSPY_OTEL_"))}
    env.update(STUB_API_BASE=openai_stub.base_url, STUB_API_KEY=FAKE_API_KEY,
               LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(APPS))
    return env


@pytest.fixture(scope="session")
def check_program_traces() -> Callable[[list], None]:
    """Assert ``traces`` are the complete traces of one ``program.run()``."""
    return _check_program_traces


def _check_program_traces(traces: list, content: bool = True) -> None:
    assert len(traces) == 3, [t.info.trace_id for t in traces]
    roots = {}
    for trace in traces:
        assert trace.info.state.value == "OK"
        spans = trace.data.spans
        ids = {s.span_id for s in spans}
        (root,) = [s for s in spans if s.parent_id is None]
        assert all(s.parent_id in ids for s in spans if s is not root), "a span's parent is missing"
        roots.setdefault(root.span_type, []).append(root)
        types = {s.span_type for s in spans}
        assert {"LLM", "CHAT_MODEL", "PARSER"} <= types, types
        chats = [s for s in spans if s.span_type == "CHAT_MODEL"]
        assert all(s.attributes.get("gen_ai.usage.input_tokens", 0) > 0 for s in chats)
        if root.span_type == "AGENT":
            assert any(s.span_type == "TOOL" and "get_weather" in s.name for s in spans)
        if content:
            assert root.inputs and "question" in root.inputs
            assert root.outputs and "answer" in root.outputs
        else:
            assert all(s.inputs is None and s.outputs is None for s in spans)
        assert FAKE_API_KEY not in str(trace.to_dict())
    assert sorted(roots) == ["AGENT", "CHAIN"] and len(roots["CHAIN"]) == 2
