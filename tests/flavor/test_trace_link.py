"""With ``dspy_otel.autolog()`` on, traces carry the MLflow model and run they ran under, captured at their start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import mlflow
import pytest
from mlflow import MlflowClient

import dspy_otel
from dspy_otel.flavor import log_model

MODEL_ID = "mlflow.modelId"
SOURCE_RUN = "mlflow.sourceRun"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A sqlite tracking store (``mlflow`` pointed at it) and an experiment; MLflow state restored afterwards."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("trace-link", artifact_location=str(tmp_path / "artifacts"))
    yield uri, experiment_id
    dspy_otel.autolog(disable=True)
    mlflow.clear_active_model()  # load_model makes the logged model active in this thread
    mlflow.set_tracking_uri(previous)


def traces(uri: str, experiment_id: str, **search: Any) -> list[Any]:
    return MlflowClient(uri).search_traces(locations=[experiment_id], max_results=100, **search)


def question(trace: Any) -> str:
    return json.loads(trace.info.request_preview)["question"]


def test_each_pyfunc_predict_is_one_trace_linked_to_the_loaded_model(
        store: tuple[str, str], make_lm: Any, env_credentials: None) -> None:
    uri, experiment_id = store
    program = dspy.ChainOfThought("question -> answer")
    program.set_lm(make_lm())
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_model(program, name="qa")
    session = dspy_otel.autolog(tracking_uri=uri, experiment_id=experiment_id)
    model = mlflow.pyfunc.load_model(info.model_uri)

    assert model.predict({"question": "one"})["answer"] == "answer for: one"
    assert session.flush()
    [single] = traces(uri, experiment_id)
    assert question(single) == "one"
    assert single.info.trace_metadata[MODEL_ID] == info.model_id
    assert SOURCE_RUN not in single.info.trace_metadata  # predicted outside any run

    answers = model.predict([{"question": "two"}, {"question": "three"}])  # batch: pool threads
    assert [a["answer"] for a in answers] == ["answer for: two", "answer for: three"]
    assert session.flush()
    linked = mlflow.search_traces(locations=[experiment_id], model_id=info.model_id, return_type="list")
    assert sorted(question(t) for t in linked) == ["one", "three", "two"]
    for trace in linked:
        roots = [s for s in trace.data.spans if s.parent_id is None]
        assert [r.name for r in roots] == [trace.info.tags["mlflow.traceName"]]  # one program call per trace
    assert session.dropped_spans == 0


def test_a_run_that_ends_before_export_still_gets_its_traces(
        store: tuple[str, str], make_lm: Any) -> None:
    uri, experiment_id = store
    session = dspy_otel.autolog(tracking_uri=uri, experiment_id=experiment_id)
    tracer = session.tracer_provider.get_tracer("app")
    program = dspy.Predict("question -> answer")
    program.set_lm(make_lm())

    run = mlflow.start_run(experiment_id=experiment_id)
    with tracer.start_as_current_span("request in the run"):
        program(question="in the run")
        mlflow.end_run()  # the trace ends (and is exported) after its run ended
    with tracer.start_as_current_span("request before the next run"):
        later = mlflow.start_run(experiment_id=experiment_id)  # active at export, not at the start
        program(question="before the run")
    mlflow.end_run()
    assert session.flush()

    [in_run] = traces(uri, experiment_id, run_id=run.info.run_id)
    assert in_run.info.tags["mlflow.traceName"] == "request in the run"
    assert in_run.info.trace_metadata[SOURCE_RUN] == run.info.run_id
    assert traces(uri, experiment_id, run_id=later.info.run_id) == []
    assert len(traces(uri, experiment_id)) == 2
