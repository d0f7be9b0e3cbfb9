"""``dspy_otel.autolog()``: the one-call way in, with real DSPy over HTTP and real MLflow stores."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from mlflow import MlflowClient

import dspy_otel
from dspy_otel.instrumentation import DSPyInstrumentor
from dspy_otel.testing.mlflow_server import MlflowServer
from dspy_otel.testing.net import free_port

APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture(autouse=True)
def autolog_disabled_afterwards() -> Iterator[None]:
    yield
    dspy_otel.autolog(disable=True)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def traces_in(tracking_uri: str, experiment_name: str) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    return [] if experiment is None else list(client.search_traces(locations=[experiment.experiment_id]))


def test_autolog_writes_complete_traces_to_an_embedded_store(
        store: str, program: ModuleType, check_program_traces: Callable[..., None]) -> None:
    session = dspy_otel.autolog(tracking_uri=store, experiment_name="autolog")
    program.configure_from_env()
    program.run()
    assert session.flush()

    check_program_traces(traces_in(store, "autolog"))
    assert session.exported_spans > 0 and session.dropped_spans == 0


def test_spans_reach_the_mlflow_exporter_as_they_end(store: str, program: ModuleType) -> None:
    """No BatchSpanProcessor queue in front of MlflowSpanExporter (it would drop in tight loops)."""
    session = dspy_otel.autolog(tracking_uri=store, experiment_name="handed-over")
    program.configure_from_env()
    program.run()
    [exporter] = session.exporters
    assert exporter.force_flush(60_000)  # the exporter's own queue only: no processor flush first

    assert len(traces_in(store, "handed-over")) == 3
    assert exporter.dropped_spans == 0


def test_calling_autolog_twice_does_not_double_spans(
        store: str, program: ModuleType, openai_stub, check_program_traces: Callable[..., None]) -> None:
    first = dspy_otel.autolog(tracking_uri=store, experiment_name="twice")
    assert dspy_otel.autolog(tracking_uri=store, experiment_name="twice") is first
    program.configure_from_env()
    calls_before = len(openai_stub.chat_requests())
    program.run()
    first.flush()

    traces = traces_in(store, "twice")
    check_program_traces(traces)
    spans = [s for t in traces for s in t.data.spans]
    assert len({s.span_id for s in spans}) == len(spans)
    chat_spans = [s for s in spans if s.span_type == "CHAT_MODEL"]
    assert len(chat_spans) == len(openai_stub.chat_requests()) - calls_before


def test_autolog_with_other_arguments_replaces_the_setup(store: str, program: ModuleType) -> None:
    first = dspy_otel.autolog(tracking_uri=store, experiment_name="first")
    second = dspy_otel.autolog(tracking_uri=store, experiment_name="second", capture_content=False)
    assert second is not first
    program.configure_from_env()
    program.run()
    second.flush()

    assert traces_in(store, "first") == []
    assert len(traces_in(store, "second")) == 3


def test_capture_content_false_keeps_structure_but_no_inputs_or_outputs(
        store: str, program: ModuleType, check_program_traces: Callable[..., None]) -> None:
    session = dspy_otel.autolog(tracking_uri=store, experiment_name="private", capture_content=False)
    program.configure_from_env()
    program.run()
    session.flush()

    traces = traces_in(store, "private")
    check_program_traces(traces, content=False)
    assert program.QUESTIONS[0] not in json.dumps([t.to_dict() for t in traces])


def test_disable_undoes_autolog(store: str, program: ModuleType) -> None:
    session = dspy_otel.autolog(tracking_uri=store, experiment_name="undone")
    program.configure_from_env()
    program.run()
    session.flush()
    assert dspy_otel.autolog(disable=True) is None
    assert not DSPyInstrumentor().is_instrumented_by_opentelemetry

    program.run()
    assert len(traces_in(store, "undone")) == 3  # only the first run's


@pytest.mark.integration
def test_otlp_only_goes_straight_to_an_mlflow_server_with_the_experiment_header(
        mlflow_server: MlflowServer, experiment_id: str, program: ModuleType,
        wait_for_traces: Callable[..., list], check_program_traces: Callable[..., None]) -> None:
    session = dspy_otel.autolog(otlp_endpoint=mlflow_server.url, experiment_id=experiment_id)
    assert not session.settings.to_mlflow and len(session.exporters) == 1
    program.configure_from_env()
    program.run()
    assert session.flush()

    check_program_traces(wait_for_traces(mlflow_server.url, experiment_id, 3, min_spans=4))
    assert session.dropped_spans == 0 and session.exported_spans > 0


def test_undeliverable_otlp_spans_are_counted_and_reported(
        monkeypatch: pytest.MonkeyPatch, program: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    session = dspy_otel.autolog(otlp_endpoint=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    program.configure_from_env()
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        program.run()
        session.flush()
        spans = session.dropped_spans
        dspy_otel.autolog(disable=True)

    assert spans > 0 and session.exported_spans == 0
    assert f"{spans} spans could not be delivered" in caplog.text


def test_mlflow_spans_and_autolog_spans_coexist(tmp_path: Path, app_env: dict[str, str]) -> None:
    """mlflow.start_span around a traced DSPy call, in isolation and with MLflow's context propagation."""
    separate = _run_app("coexist_app.py", tmp_path / "a", app_env)
    # Isolated by default: two traces, MLflow's span alone and the DSPy trace, nothing lost or doubled.
    by_root = {trace[0]: trace for trace in separate["traces"]}
    assert sorted(by_root) == ["ChainOfThought", "outer"] and by_root["outer"] == ["outer"]
    assert len(by_root["ChainOfThought"]) == len(set(by_root["ChainOfThought"])) > 1

    app_env["MLFLOW_TRACE_PROPAGATE_TO_OTEL_CONTEXT"] = "true"
    nested = _run_app("coexist_app.py", tmp_path / "b", app_env)
    (trace,) = nested["traces"]
    assert trace[0] == "outer" and "ChainOfThought" in trace  # one trace: DSPy nested in the MLflow span
    assert len(trace) == len(set(trace))


def test_autolog_adds_to_the_applications_tracer_provider(tmp_path: Path, app_env: dict[str, str]) -> None:
    result = _run_app("own_provider_app.py", tmp_path, app_env)
    assert result["provider_unchanged"] is True
    assert "ChainOfThought" in result["app_exporter_spans"]  # the app's own exporter still gets everything
    (trace,) = result["traces"]
    assert trace[0] == "handle_request" and "ChainOfThought" in trace  # the app's span is the MLflow root


def _run_app(script: str, workdir: Path, env: dict[str, str]) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(APPS / script)], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_autolog_warns_when_mlflow_dspy_autolog_is_on_too(store: str, caplog: pytest.LogCaptureFixture) -> None:
    import mlflow

    mlflow.dspy.autolog()
    try:
        with caplog.at_level(logging.WARNING, logger="dspy_otel"):
            dspy_otel.autolog(tracking_uri=store)
    finally:
        mlflow.dspy.autolog(disable=True)
    assert "mlflow.dspy.autolog() is enabled too" in caplog.text


def test_silent_setup_logs_nothing(store: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dspy_otel"):
        dspy_otel.autolog(tracking_uri=store, silent=True)
        assert caplog.records == []
        dspy_otel.autolog(disable=True)
        dspy_otel.autolog(tracking_uri=store)
    assert "tracing DSPy to MLflow" in caplog.text


def test_spans_are_flushed_at_interpreter_exit(tmp_path: Path, app_env: dict[str, str],
                                               check_program_traces: Callable[..., None]) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = ("import sys, program, dspy_otel\n"
              "dspy_otel.autolog(tracking_uri=sys.argv[1], experiment_name='exit')\n"
              "program.configure_from_env()\nprogram.run()\n")  # no flush: exit must deliver
    done = subprocess.run([sys.executable, "-c", script, store], env=app_env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    check_program_traces(traces_in(store, "exit"))
