"""The instrumentation needs only the OpenTelemetry API, opentelemetry-instrumentation and wrapt (plus DSPy)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import importlib.abc, sys

    BLOCKED = ("opentelemetry.sdk", "opentelemetry.exporter", "mlflow")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.startswith(BLOCKED):
                raise ModuleNotFoundError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())

    import dspy_otel
    from dspy_otel.instrumentation import DSPyInstrumentor
    assert "dspy" not in sys.modules, "importing the instrumentation must not import DSPy"
    DSPyInstrumentor().instrument(capture_content=True)   # the API's default (no-op) providers

    import dspy
    from dspy.utils.dummies import DummyLM
    with dspy.context(lm=DummyLM([{"answer": "blue"}])):
        print("ANSWER", dspy.Predict("question -> answer")(question="sky?").answer)
    DSPyInstrumentor().uninstrument()
    print("LOADED", sorted(m for m in sys.modules if m.startswith(BLOCKED)))
''')


def test_instrumentation_runs_without_sdk_exporters_or_mlflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}, check=False)
    assert done.returncode == 0, done.stderr
    assert "ANSWER blue" in done.stdout
    assert "LOADED []" in done.stdout
