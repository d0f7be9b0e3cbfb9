"""The DSPy program the ways-in tests trace: two ChainOfThought calls and a ReAct agent with a tool.

It talks to the OpenAI-compatible server at ``$STUB_API_BASE``; ``run()`` makes three traces.
"""

from __future__ import annotations

import os

import dspy

QUESTIONS = ("What is the capital of France?", "How many legs does a spider have?")
AGENT_QUESTION = "What is the weather in Paris?"
TRACES_PER_RUN = 3


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def configure_from_env() -> None:
    dspy.configure(lm=dspy.LM("openai/stub-model", api_base=os.environ["STUB_API_BASE"],
                              api_key=os.environ["STUB_API_KEY"], cache=False, num_retries=0))


def run() -> list[str]:
    cot = dspy.ChainOfThought("question -> answer")
    answers = [cot(question=question).answer for question in QUESTIONS]
    agent = dspy.ReAct("question -> answer", tools=[get_weather], max_iters=3)
    answers.append(agent(question=AGENT_QUESTION).answer)
    return answers
