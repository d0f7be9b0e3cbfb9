"""dspy-otel quickstart: trace a small DSPy program into a local MLflow store and print what was recorded.

    python examples/quickstart.py            # or: python dev.py demo

With ``DSPY_OTEL_DEMO_MODEL`` set (a LiteLLM model name such as ``openai/gpt-4o-mini``, plus that
provider's key, e.g. ``OPENAI_API_KEY``) it uses that model; otherwise it starts a local
OpenAI-compatible stand-in whose answers are canned. Traces go to ``MLFLOW_TRACKING_URI`` if set,
else to ``mlflow.db`` in the current directory.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before DSPy/LiteLLM load: no download

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import dspy  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

import dspy_otel  # noqa: E402

EXPERIMENT = "dspy-otel-quickstart"


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"22°C and sunny in {city}"


def choose_lm() -> tuple[dspy.LM, object | None]:
    """The configured model, or the local stand-in (returned too, so it can be stopped)."""
    model = os.environ.get("DSPY_OTEL_DEMO_MODEL")
    if model:
        print(f"LLM: {model}")
        return dspy.LM(model), None
    from dspy_otel.testing.openai_stub import OpenAIStub

    stub = OpenAIStub(latency=0.05).start()
    print(f"LLM: LOCAL STAND-IN (an OpenAI-compatible stub at {stub.base_url}; its answers are canned, "
          "not a real model's).\n     Set DSPY_OTEL_DEMO_MODEL (and its API key) to use a real LLM.")
    return dspy.LM("openai/stand-in", api_base=stub.base_url, api_key="not-a-real-key", cache=False), stub


def print_tree(trace) -> None:
    info = trace.info
    usage = info.token_usage or {}
    print(f"\ntrace {info.trace_id}  {info.state.value}  {info.execution_duration} ms  "
          f"tokens in/out/total {usage.get('input_tokens', 0)}/{usage.get('output_tokens', 0)}/"
          f"{usage.get('total_tokens', 0)}")
    children: dict[str | None, list] = {}
    for span in sorted(trace.data.spans, key=lambda s: s.start_time_ns):
        children.setdefault(span.parent_id, []).append(span)

    def walk(parent_id: str | None, prefix: str) -> None:
        kids = children.get(parent_id, [])
        for index, span in enumerate(kids):
            last = index == len(kids) - 1
            millis = (span.end_time_ns - span.start_time_ns) / 1e6
            tokens = span.attributes.get("gen_ai.usage.input_tokens")
            usage_text = f"  tokens {tokens}→{span.attributes.get('gen_ai.usage.output_tokens')}" if tokens else ""
            print(f"{prefix}{'└─' if last else '├─'} {span.name} [{span.span_type}] {millis:.1f} ms{usage_text}")
            walk(span.span_id, prefix + ("   " if last else "│  "))

    walk(None, "  ")


def main() -> None:
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    session = dspy_otel.autolog(tracking_uri=tracking_uri, experiment_name=EXPERIMENT)
    lm, stub = choose_lm()
    dspy.configure(lm=lm)
    started_ms = int(time.time() * 1000)

    cot = dspy.ChainOfThought("question -> answer")
    print("\nChainOfThought:", cot(question="Why is the sky blue? One sentence.").answer)
    agent = dspy.ReAct("question -> answer", tools=[get_weather], max_iters=4)
    print("ReAct:", agent(question="What is the weather in Paris?").answer)

    session.flush()
    if stub is not None:
        stub.stop()
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    traces = client.search_traces(locations=[experiment_id], filter_string=f"trace.timestamp_ms >= {started_ms}",
                                  order_by=["timestamp_ms ASC"])
    print(f"\n{len(traces)} traces recorded in {tracking_uri} (experiment {EXPERIMENT!r}):")
    for trace in traces:
        print_tree(trace)
    print(f"\nOpen them in the MLflow UI:\n    mlflow ui --backend-store-uri {tracking_uri}\n"
          "and go to http://127.0.0.1:5000 → Experiments → dspy-otel-quickstart → Traces.")


if __name__ == "__main__":
    main()
