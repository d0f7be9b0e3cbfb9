"""Importable program classes and tools for the flavor tests (shipped to loaders with ``code_paths``)."""

from __future__ import annotations

import threading

import dspy


def lookup(topic: str) -> str:
    """Look a topic up in the encyclopedia."""
    return f"facts about {topic}"


def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


class SummarizeThenAnswer(dspy.Module):
    """A custom multi-module program: a Predict feeding a ChainOfThought."""

    def __init__(self, style: str = "plain") -> None:
        super().__init__()
        self.style = style
        self.summarize = dspy.Predict("question -> summary")
        self.answer = dspy.ChainOfThought("question, summary -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        summary = self.summarize(question=question).summary
        return self.answer(question=question, summary=f"[{self.style}] {summary}")


class TwoAnswers(dspy.Module):
    """Returns a list of predictions (chat task: one choice each)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = dspy.Predict("question -> answer")
        self.second = dspy.Predict("question -> answer")

    def forward(self, question: str) -> list[dspy.Prediction]:
        return [self.first(question=question), self.second(question=f"again: {question}")]


class ThreadRecorder(dspy.Module):
    """Records the thread each call runs on (batch-pool bound test)."""

    threads: list[str] = []

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        ThreadRecorder.threads.append(threading.current_thread().name)
        return self.predict(question=question)
