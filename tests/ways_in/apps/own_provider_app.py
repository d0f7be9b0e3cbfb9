"""An app with its own OpenTelemetry SDK setup: ``autolog()`` must add to it, not replace it."""

import json

import program
import stored
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dspy_otel

app_exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(app_exporter))
trace.set_tracer_provider(provider)

STORE = "sqlite:///mlflow.db"
session = dspy_otel.autolog(tracking_uri=STORE, experiment_name="own-provider")
program.configure_from_env()
with trace.get_tracer("app").start_as_current_span("handle_request"):
    program.dspy.ChainOfThought("question -> answer")(question=program.QUESTIONS[0])
session.flush()

from mlflow import MlflowClient  # noqa: E402

experiment_id = MlflowClient(STORE).get_experiment_by_name("own-provider").experiment_id
print(json.dumps({
    "provider_unchanged": trace.get_tracer_provider() is provider and session.tracer_provider is provider,
    "app_exporter_spans": [s.name for s in app_exporter.get_finished_spans()],
    "traces": stored.span_names_per_trace(STORE, experiment_id),
}))
