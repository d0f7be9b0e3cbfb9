"""Custom LMs, sampling, suppression, optimizers, secrets, uninstrument, and never breaking the program."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from dspy_otel.instrumentation import DSPyInstrumentor
from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.modules import ModuleHandler

from ..conftest import API_KEY
from .conftest import Spans

ANSWER = "[[ ## answer ## ]]\n42\n\n[[ ## completed ## ]]"


class EchoLM(dspy.BaseLM):
    """A user LM implementing the legacy ``forward`` interface."""

    def forward(self, prompt=None, messages=None, **kwargs):
        return SimpleNamespace(
            id="custom-1", model="echo-1", choices=[SimpleNamespace(message=SimpleNamespace(content=ANSWER),
                                                                    finish_reason="stop")],
            usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        )


class LoudLM(EchoLM):
    """Overrides ``__call__`` and calls ``super()``: still one LM span."""

    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)


def _wrapped_methods() -> list[str]:
    import wrapt

    found = []
    classes = [dspy.Module, dspy.Predict, dspy.BaseLM, dspy.LM, dspy.Adapter, dspy.ChatAdapter, dspy.JSONAdapter,
               dspy.Tool, dspy.Evaluate, dspy.Embedder, dspy.Retrieve, dspy.teleprompt.BootstrapFewShot,
               dspy.utils.parallelizer.ParallelExecutor]
    import dspy.clients.execution as execution

    for owner in [*classes, execution]:
        for name, value in vars(owner).items():
            if isinstance(value, wrapt.FunctionWrapper):
                found.append(f"{getattr(owner, '__name__', owner)}.{name}")
    return found


@pytest.mark.parametrize("lm_class", [EchoLM, LoudLM])
def test_custom_base_lm_subclasses_get_one_lm_span(spans, lm_class):
    with dspy.context(lm=lm_class("custom/echo")):
        result = dspy.Predict("question -> answer")(question="custom?")

    assert result.answer == "42"
    chat = spans.one("chat ")
    assert chat.name == "chat echo"
    assert chat.attributes[attr.DSPY_LM_CLASS] == lm_class.__name__
    assert chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert chat.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert chat.attributes[attr.GEN_AI_RESPONSE_MODEL] == "echo-1"


def test_dummy_lm(spans):
    with dspy.context(lm=DummyLM([{"answer": "blue"}])):
        assert dspy.Predict("question -> answer")(question="sky?").answer == "blue"
    assert [s.name for s in spans.all if s.name.startswith("chat")] == ["chat dummy"]


def test_always_off_sampler_records_nothing_and_changes_nothing(instrument, span_exporter, lm):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    instrument(tracer_provider=provider)

    result = dspy.ChainOfThought("question -> answer")(question="sampled out")
    assert result.answer == "answer for: sampled out"
    assert span_exporter.get_finished_spans() == ()


def test_suppress_instrumentation(spans, lm):
    with suppress_instrumentation():
        assert dspy.Predict("question -> answer")(question="quiet").answer == "answer for: quiet"
    assert spans.all == []


def test_bootstrap_compile_is_parent_and_deepcopies_stay_traced(spans, lm):
    program = dspy.ChainOfThought("question -> answer")
    clone = copy.deepcopy(program)
    trainset = [dspy.Example(question=f"t{i}", answer=f"answer for: t{i}").with_inputs("question") for i in range(4)]
    optimizer = dspy.BootstrapFewShot(metric=lambda ex, pred, trace=None: ex.answer == pred.answer,
                                      max_bootstrapped_demos=2, max_labeled_demos=2)
    compiled = optimizer.compile(clone, trainset=trainset)

    assert len(spans.trace_ids()) == 1
    root = spans.roots()[0]
    assert root.name == "BootstrapFewShot.compile"
    assert root.attributes[attr.DSPY_TRAINSET_SIZE] == 4
    assert root.attributes[attr.DSPY_OPTIMIZER_CLASS] == "BootstrapFewShot"
    assert len(spans.named("chat ")) >= 2

    spans.clear()
    compiled(question="after compile")
    predictor = spans.one("Predict(")
    assert predictor.attributes[attr.DSPY_DEMOS_COUNT] == 2
    assert predictor.attributes[attr.DSPY_PREDICTOR_PATH] == "predict"


def test_api_key_and_authorization_header_never_recorded(spans, make_lm, openai_stub):
    header_secret = "Bearer hdr-SECRET-abcdef123456"
    litellm_lm = make_lm(engine="litellm", extra_headers={"Authorization": header_secret, "X-Trace": "ok"})
    with dspy.context(lm=litellm_lm):
        dspy.Predict("question -> answer")(question=f"please echo {API_KEY}")
    with dspy.context(lm=make_lm()):
        program = dspy.Predict("question -> answer")
        program(question="native path", config={"api_key": API_KEY})

    assert any(r["headers"].get("authorization") == header_secret for r in openai_stub.chat_requests())
    text = spans.text()
    assert API_KEY not in text
    assert "hdr-SECRET-abcdef123456" not in text
    assert "[REDACTED]" in text
    assert len(spans.named("chat ")) == 2


def test_uninstrument_restores_every_original(instrument, span_exporter, lm):
    originals = {name: vars(dspy.Module)[name] for name in ("__call__", "acall")}
    instrumentor = instrument()
    assert len(_wrapped_methods()) > 10
    instrumentor.uninstrument()

    assert _wrapped_methods() == []
    assert {name: vars(dspy.Module)[name] for name in ("__call__", "acall")} == originals
    dspy.Predict("question -> answer")(question="untraced")
    assert span_exporter.get_finished_spans() == ()


def test_instrument_tolerates_odd_user_classes(spans, lm):
    class Odd(dspy.Module):
        def __call__(self, *args, **kwargs):  # no super(): untraced, still works
            return "odd"

    class _HiddenAdapter(dspy.ChatAdapter):
        def parse(self, signature, completion, *extra, **more):
            return super().parse(signature, completion)

    DSPyInstrumentor().uninstrument()
    DSPyInstrumentor().instrument(tracer_provider=spans_provider(spans), capture_content=True)
    assert Odd()() == "odd"
    with dspy.context(adapter=_HiddenAdapter()):
        assert dspy.Predict("question -> answer")(question="hidden").answer == "answer for: hidden"
    adapter = spans.one("_HiddenAdapter")
    assert [e.name for e in adapter.events] == [attr.EVENT_ADAPTER_FORMAT, attr.EVENT_ADAPTER_PARSE]  # not doubled


def spans_provider(spans: Spans) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans.exporter))
    return provider


def test_errors_in_our_code_never_reach_the_program(spans, lm, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(ModuleHandler, "name", broken)
    monkeypatch.setattr(ModuleHandler, "on_end", broken)
    result = dspy.ChainOfThought("question -> answer")(question="still works")
    assert result.answer == "answer for: still works"
    assert spans.named("chat ")  # the LM span still recorded


def test_program_exceptions_pass_through_unchanged(spans, lm):
    class Failing(dspy.Module):
        def forward(self, question):
            raise KeyError(question)

    with pytest.raises(KeyError) as caught:
        Failing()(question="missing")
    assert caught.value.args == ("missing",)
    assert spans.one("Failing").attributes[attr.ERROR_TYPE] == "KeyError"


def test_adapter_subclass_defined_while_instrumented_goes_quiet_after_uninstrument(spans, lm):
    class LateAdapter(dspy.ChatAdapter):  # DSPy re-decorates format/parse of the (wrapped) parent here
        pass

    with dspy.context(adapter=LateAdapter()):
        dspy.Predict("question -> answer")(question="late")
        assert [e.name for e in spans.one("LateAdapter").events] == [attr.EVENT_ADAPTER_FORMAT, attr.EVENT_ADAPTER_PARSE]
        DSPyInstrumentor().uninstrument()
        spans.clear()
        assert dspy.Predict("question -> answer")(question="late").answer == "answer for: late"
    assert spans.all == []
