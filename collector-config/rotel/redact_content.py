"""rotel trace processor: delete prompt/response content attributes before spans leave the collector.

Run with ``rotel start --otlp-with-trace-processor collector-config/rotel/redact_content.py`` (or
``ROTEL_OTLP_WITH_TRACE_PROCESSOR``). rotel runs it in its embedded Python 3.11: stdlib only.
An exception escaping a rotel processor stops the collector, so every span is handled defensively.
Keep :data:`CONTENT_KEYS` in step with ``attributes/redact-content`` in ``otelcol/redact-content.yaml``.
"""

import sys

CONTENT_KEYS = frozenset({
    # OpenTelemetry GenAI
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    # MLflow
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    # OpenInference
    "input.value",
    "output.value",
})
REDACTED_COUNT_KEY = "dspy_otel.redacted.count"


def _delete_content(attributes) -> int:
    """Delete content keys from a rotel ``AttributesList`` in place; return how many were deleted."""
    doomed = [i for i, kv in enumerate(attributes) if kv.key in CONTENT_KEYS]
    for index in reversed(doomed):
        del attributes[index]
    return len(doomed)


def process_spans(resource_spans):
    from rotel_sdk.open_telemetry.common.v1 import KeyValue

    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            try:
                removed = _delete_content(span.attributes)
                for event in span.events:
                    removed += _delete_content(event.attributes)
                if removed:
                    span.attributes.append(KeyValue.new_int_value(REDACTED_COUNT_KEY, removed))
            except Exception as exc:  # never take the collector down
                print(f"redact_content: span left unchanged: {exc!r}", file=sys.stderr)
