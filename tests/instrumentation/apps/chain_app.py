"""A plain DSPy app with no tracing code: run under ``opentelemetry-instrument`` by the tests."""

import os

import dspy

lm = dspy.LM("openai/stub-model", api_base=os.environ["STUB_BASE_URL"], api_key=os.environ["STUB_API_KEY"], cache=False)
dspy.configure(lm=lm)
print("ANSWER:", dspy.ChainOfThought("question -> answer")(question="launcher?").answer, flush=True)
