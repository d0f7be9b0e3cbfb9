"""GenAI client metrics: ``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.metrics import Meter

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.dspy_compat import ResponseInfo

# Bucket boundaries recommended by the GenAI semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


class GenAIMetrics:
    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            attr.METRIC_OPERATION_DURATION, unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            attr.METRIC_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )

    def record(self, call: Any, operation: str, provider: str, model: str, info: ResponseInfo,
               error: BaseException | None) -> None:
        attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: operation,
            attr.GEN_AI_PROVIDER_NAME: provider,
            attr.GEN_AI_REQUEST_MODEL: model,
        }
        if info.model:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = info.model
        if error is not None:
            attributes[attr.ERROR_TYPE] = type(error).__qualname__
        self.duration.record(time.perf_counter() - call.start, attributes)
        for token_type, count in (("input", info.input_tokens), ("output", info.output_tokens)):
            if count is not None:
                self.tokens.record(count, {**attributes, attr.GEN_AI_TOKEN_TYPE: token_type})
