"""The DSPy programs the benchmarks time, over an in-process LM: no network, no cache, deterministic.

The LM is a real ``dspy.LM`` (so every instrumentation sees an ordinary LM call through
``BaseLM.__call__``) whose custom engine returns one fixed ChatAdapter-formatted response with
token usage, so the time measured is DSPy's own work plus the tracing under test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage

# Holds every output field of both workloads; ChatAdapter keeps the fields its signature asks for.
ANSWER_TEXT = (
    "[[ ## draft ## ]]\nThe capital of France is Paris.\n\n"
    "[[ ## answer ## ]]\nParis\n\n"
    "[[ ## completed ## ]]"
)
QUESTION = "What is the capital of France?"


class FixedResponseEngine:
    """A DSPy LM engine answering every request with the same response (id, model, usage)."""

    def __init__(self, text: str = ANSWER_TEXT) -> None:
        self.response = Response(
            id="chatcmpl-bench", model="bench-model", message=Message.assistant([TextPart(text)]),
            finish_reason="stop", usage=Usage(input_tokens=120, output_tokens=16, total_tokens=136),
        )

    def complete(self, request: Request) -> Response:
        return self.response

    def stream(self, request: Request) -> Any:
        raise NotImplementedError("the benchmark does not stream")

    def close(self) -> None:
        """Nothing to release."""


def make_lm() -> dspy.LM:
    return dspy.LM("openai/bench-model", engine=FixedResponseEngine(), cache=False)


class DraftThenAnswer(dspy.Module):
    """The two-predictor pipeline: draft an answer, then answer from the draft."""

    def __init__(self) -> None:
        super().__init__()
        self.draft = dspy.Predict("question -> draft")
        self.answer = dspy.Predict("question, draft -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        draft = self.draft(question=question).draft
        return self.answer(question=question, draft=draft)


def workloads() -> dict[str, Callable[[], Any]]:
    """Name → a zero-argument call of the program; configures the in-process LM globally."""
    dspy.configure(lm=make_lm())
    predict = dspy.Predict("question -> answer")
    pipeline = DraftThenAnswer()
    return {
        "predict": lambda: predict(question=QUESTION),
        "pipeline": lambda: pipeline(question=QUESTION),
    }
