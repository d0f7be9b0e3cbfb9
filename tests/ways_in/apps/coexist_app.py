"""MLflow's own tracing (``mlflow.start_span``) around a DSPy call traced by ``dspy_otel.autolog()``."""

import json

import mlflow
import program
import stored

import dspy_otel

STORE = "sqlite:///mlflow.db"
mlflow.set_tracking_uri(STORE)
experiment_id = mlflow.set_experiment("coexist").experiment_id
session = dspy_otel.autolog(tracking_uri=STORE, experiment_id=experiment_id)
program.configure_from_env()

with mlflow.start_span("outer") as span:
    span.set_inputs({"question": program.QUESTIONS[0]})
    answer = program.dspy.ChainOfThought("question -> answer")(question=program.QUESTIONS[0]).answer
    span.set_outputs({"answer": answer})

session.flush()
mlflow.flush_trace_async_logging(terminate=True)
print(json.dumps({"traces": stored.span_names_per_trace(STORE, experiment_id)}))
