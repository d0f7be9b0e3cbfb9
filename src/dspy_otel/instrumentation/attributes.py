"""Every span, event and metric name dspy-otel records, in one place.

Families (chosen with ``DSPY_OTEL_SEMCONV`` or ``DSPyInstrumentor().instrument(semconv=...)``):

- ``gen_ai``: the OpenTelemetry GenAI semantic conventions, pinned to :data:`SEMCONV_SCHEMA_URL`;
- ``mlflow``: ``mlflow.spanType`` / ``mlflow.spanInputs`` / ``mlflow.spanOutputs``, which MLflow
  reads to type spans and show inputs and outputs (its OTLP ingest does not derive them);
- ``openinference``: Arize OpenInference attributes, for Phoenix.

The ``dspy.*`` attributes (DSPy's own concepts) are always recorded.
"""

from __future__ import annotations

from typing import Final

SEMCONV_VERSION: Final = "1.44.0"
SEMCONV_SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

FAMILY_GEN_AI: Final = "gen_ai"
FAMILY_MLFLOW: Final = "mlflow"
FAMILY_OPENINFERENCE: Final = "openinference"
ALL_FAMILIES: Final = frozenset({FAMILY_GEN_AI, FAMILY_MLFLOW, FAMILY_OPENINFERENCE})
DEFAULT_FAMILIES: Final = frozenset({FAMILY_GEN_AI, FAMILY_MLFLOW})

# --- OpenTelemetry GenAI --------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
ERROR_TYPE: Final = "error.type"

OPERATION_CHAT: Final = "chat"
OPERATION_TEXT_COMPLETION: Final = "text_completion"
OPERATION_EMBEDDINGS: Final = "embeddings"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"
OPERATION_INVOKE_AGENT: Final = "invoke_agent"

METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"

# --- MLflow ---------------------------------------------------------------------------
MLFLOW_SPAN_TYPE: Final = "mlflow.spanType"
MLFLOW_SPAN_INPUTS: Final = "mlflow.spanInputs"
MLFLOW_SPAN_OUTPUTS: Final = "mlflow.spanOutputs"


class SpanType:
    """MLflow span types (``mlflow.entities.SpanType`` values, without importing MLflow)."""

    CHAIN: Final = "CHAIN"
    AGENT: Final = "AGENT"
    CHAT_MODEL: Final = "CHAT_MODEL"
    LLM: Final = "LLM"
    PARSER: Final = "PARSER"
    TOOL: Final = "TOOL"
    RETRIEVER: Final = "RETRIEVER"
    EMBEDDING: Final = "EMBEDDING"
    EVALUATOR: Final = "EVALUATOR"
    UNKNOWN: Final = "UNKNOWN"


# --- OpenInference --------------------------------------------------------------------
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
LLM_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
TOOL_NAME: Final = "tool.name"
MIME_JSON: Final = "application/json"

# OpenInference span kinds for each MLflow span type.
OPENINFERENCE_KIND: Final = {
    SpanType.CHAIN: "CHAIN",
    SpanType.AGENT: "AGENT",
    SpanType.CHAT_MODEL: "LLM",
    SpanType.LLM: "LLM",
    SpanType.PARSER: "CHAIN",
    SpanType.TOOL: "TOOL",
    SpanType.RETRIEVER: "RETRIEVER",
    SpanType.EMBEDDING: "EMBEDDING",
    SpanType.EVALUATOR: "EVALUATOR",
    SpanType.UNKNOWN: "UNKNOWN",
}

# --- DSPy's own -----------------------------------------------------------------------
DSPY_MODULE_CLASS: Final = "dspy.module.class"
DSPY_SIGNATURE_NAME: Final = "dspy.signature.name"
DSPY_SIGNATURE_INPUT_FIELDS: Final = "dspy.signature.input_fields"
DSPY_SIGNATURE_OUTPUT_FIELDS: Final = "dspy.signature.output_fields"
DSPY_PREDICTOR_PATH: Final = "dspy.predictor.path"
DSPY_DEMOS_COUNT: Final = "dspy.demos.count"
DSPY_ADAPTER: Final = "dspy.adapter"
DSPY_LM_CACHE_HIT: Final = "dspy.lm.cache_hit"
DSPY_LM_COST: Final = "dspy.lm.cost"
DSPY_LM_CLASS: Final = "dspy.lm.class"
DSPY_AGENT_ITERATIONS: Final = "dspy.agent.iterations"
DSPY_AGENT_TOOLS: Final = "dspy.agent.tools"
DSPY_TOOL_IS_FINISH: Final = "dspy.tool.is_finish"
DSPY_RETRIEVER_K: Final = "dspy.retriever.k"
DSPY_EVALUATE_NUM_EXAMPLES: Final = "dspy.evaluate.num_examples"
DSPY_EVALUATE_NUM_THREADS: Final = "dspy.evaluate.num_threads"
DSPY_EVALUATE_SCORE: Final = "dspy.evaluate.score"
DSPY_OPTIMIZER_CLASS: Final = "dspy.optimizer.class"
DSPY_TRAINSET_SIZE: Final = "dspy.optimizer.trainset_size"
DSPY_CONTENT_TRUNCATED: Final = "dspy.content.truncated"

EVENT_OPERATION_DETAILS: Final = "gen_ai.client.inference.operation.details"
EVENT_ADAPTER_FORMAT: Final = "dspy.adapter.format"
EVENT_ADAPTER_PARSE: Final = "dspy.adapter.parse"
EVENT_ADAPTER_PARSE_FAILURE: Final = "dspy.adapter.parse_failure"
EVENT_ADAPTER_FALLBACK: Final = "dspy.adapter.fallback"
