"""Shared fixtures: a local OpenAI-compatible server, an in-memory span pipeline, an LM factory."""

from __future__ import annotations

import os
import tempfile

# Before DSPy/LiteLLM are imported: no model-cost-map download, a private DSPy cache.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="dspy-otel-cache-"))

from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

from dspy_otel.testing.openai_stub import OpenAIStub  # noqa: E402

API_KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(scope="session")
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
def make_lm(openai_stub: OpenAIStub) -> Callable[..., object]:
    """``make_lm(model="stub-model", **kwargs)``: a ``dspy.LM`` pointed at the local stub (no cache)."""
    import dspy

    def factory(model: str = "stub-model", **kwargs: object) -> dspy.LM:
        kwargs.setdefault("cache", False)
        kwargs.setdefault("num_retries", 0)
        return dspy.LM(f"openai/{model}", api_base=openai_stub.base_url, api_key=API_KEY, **kwargs)

    return factory
