"""``opentelemetry-instrument python app.py`` finds our instrumentor through its ``dspy_otel`` entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import API_KEY

APP = Path(__file__).parent / "apps" / "chain_app.py"


def run_instrumented(openai_stub, **env: str) -> subprocess.CompletedProcess[str]:
    launcher = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if launcher is None:
        pytest.fail("opentelemetry-instrument is not installed next to this Python")
    environment = {
        **os.environ,
        "STUB_BASE_URL": openai_stub.base_url,
        "STUB_API_KEY": API_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        # The peers installed for the benchmarks register as "dspy"; keep only ours.
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "dspy",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        **env,
    }
    return subprocess.run([launcher, sys.executable, str(APP)], capture_output=True, text=True, env=environment,
                          timeout=180, check=False)


def test_opentelemetry_instrument_emits_our_spans(openai_stub):
    done = run_instrumented(openai_stub)
    assert done.returncode == 0, done.stderr
    assert "ANSWER: answer for: launcher?" in done.stdout
    for name in ('"name": "ChainOfThought"', '"name": "chat stub-model"', '"name": "ChatAdapter"', '"name": "dspy.adapter.parse"'):
        assert name in done.stdout
    assert '"dspy.module.class": "dspy.predict.chain_of_thought.ChainOfThought"' in done.stdout
    assert "launcher?" in done.stdout  # content capture from the environment
    assert API_KEY not in done.stdout + done.stderr


def test_disabled_instrumentations_turns_us_off(openai_stub):
    done = run_instrumented(openai_stub, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="dspy,dspy_otel")
    assert done.returncode == 0, done.stderr
    assert "ANSWER: answer for: launcher?" in done.stdout
    assert '"name": "chat stub-model"' not in done.stdout
