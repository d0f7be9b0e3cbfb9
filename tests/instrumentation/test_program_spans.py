"""Span trees of real DSPy programs over HTTP to the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio

import dspy
from opentelemetry.trace import SpanKind, StatusCode

from dspy_otel.instrumentation import attributes as attr


def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


def weather(city: str, days: int) -> str:
    """Weather forecast for a city."""
    return f"sunny in {city} for {days} days"


class Pipeline(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.draft = dspy.ChainOfThought("question -> draft")
        self.polish = dspy.Predict("draft -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        return self.polish(draft=self.draft(question=question).draft)


def test_chain_of_thought_tree(spans, lm):
    result = dspy.ChainOfThought("question -> answer")(question="What is 2+2?")

    assert result.answer == "answer for: What is 2+2?"
    assert spans.tree() == [("ChainOfThought", [("Predict(question -> reasoning, answer)", [("ChatAdapter", [
        ("chat stub-model", [])])])])]
    assert len(spans.trace_ids()) == 1
    predictor = spans.one("Predict(")
    assert predictor.attributes[attr.DSPY_PREDICTOR_PATH] == "predict"
    assert predictor.attributes[attr.DSPY_SIGNATURE_INPUT_FIELDS] == ("question",)
    assert predictor.attributes[attr.DSPY_SIGNATURE_OUTPUT_FIELDS] == ("reasoning", "answer")
    assert predictor.attributes[attr.DSPY_DEMOS_COUNT] == 0
    chat = spans.one("chat ")
    assert chat.kind is SpanKind.CLIENT
    assert chat.attributes[attr.GEN_AI_OPERATION_NAME] == "chat"
    assert chat.attributes[attr.GEN_AI_PROVIDER_NAME] == "openai"
    assert chat.attributes[attr.GEN_AI_REQUEST_MODEL] == "stub-model"
    assert chat.attributes[attr.GEN_AI_RESPONSE_MODEL] == "stub-model"
    assert chat.attributes[attr.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")
    assert chat.attributes[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert chat.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert chat.attributes[attr.DSPY_LM_CACHE_HIT] is False
    types = {s.name.split("(")[0]: s.attributes[attr.MLFLOW_SPAN_TYPE] for s in spans.all}
    assert types == {"ChainOfThought": "CHAIN", "Predict": "LLM", "ChatAdapter": "PARSER", "chat stub-model": "CHAT_MODEL"}
    adapter = spans.one("ChatAdapter")
    assert [e.name for e in adapter.events] == [attr.EVENT_ADAPTER_FORMAT, attr.EVENT_ADAPTER_PARSE]
    assert adapter.events[0].attributes["dspy.messages.count"] == 2
    assert all(e.attributes["dspy.duration_ms"] >= 0 for e in adapter.events)
    assert all(attr.MLFLOW_SPAN_INPUTS in s.attributes for s in spans.all)
    assert 'What is 2+2?' in chat.attributes[attr.GEN_AI_INPUT_MESSAGES]
    assert "answer for: What is 2+2?" in chat.attributes[attr.GEN_AI_OUTPUT_MESSAGES]
    assert "Your input fields are" in chat.attributes[attr.GEN_AI_SYSTEM_INSTRUCTIONS]


def test_multi_module_pipeline_nests_and_names_paths(spans, lm):
    Pipeline()(question="Why is the sky blue?")

    assert len(spans.roots()) == 1
    root = spans.roots()[0]
    assert root.name == "Pipeline"
    assert [c.name for c in spans.children(root)] == ["ChainOfThought", "Predict(draft -> answer)"]
    paths = sorted(s.attributes[attr.DSPY_PREDICTOR_PATH] for s in spans.named("Predict("))
    assert paths == ["draft.predict", "polish"]
    assert len(spans.named("chat ")) == 2


def test_react_with_two_tools_is_one_agent_trace(spans, lm):
    agent = dspy.ReAct("question -> answer", tools=[search, weather], max_iters=5)
    agent(question="Weather in Paris?")

    assert len(spans.trace_ids()) == 1
    root = spans.roots()[0]
    assert root.name == "invoke_agent ReAct"
    assert root.attributes[attr.MLFLOW_SPAN_TYPE] == "AGENT"
    assert root.attributes[attr.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert root.attributes[attr.GEN_AI_AGENT_NAME] == "ReAct"
    assert root.attributes[attr.DSPY_AGENT_TOOLS] == ("search", "weather")
    assert root.attributes[attr.DSPY_AGENT_ITERATIONS] == 3
    children = [c.name for c in spans.children(root)]
    assert children == ["Predict(question, trajectory -> next_thought, next_tool_name, next_tool_args)",
                        "execute_tool search", children[1 + 1], "execute_tool weather", children[4],
                        "execute_tool finish", "ChainOfThought"]
    tool = spans.one("execute_tool weather")
    assert tool.attributes[attr.GEN_AI_TOOL_NAME] == "weather"
    assert tool.attributes[attr.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool.attributes[attr.MLFLOW_SPAN_TYPE] == "TOOL"
    assert '"city": "dspy"' in tool.attributes[attr.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert "sunny in dspy for 3 days" in tool.attributes[attr.GEN_AI_TOOL_CALL_RESULT]
    assert spans.one("execute_tool finish").attributes[attr.DSPY_TOOL_IS_FINISH] is True
    assert attr.DSPY_TOOL_IS_FINISH not in tool.attributes
    for chat in spans.named("chat "):
        assert chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert spans.parent(spans.parent(chat)).name.startswith("Predict(")


def test_acall_builds_the_same_tree(spans, lm):
    result = asyncio.run(dspy.ChainOfThought("question -> answer").acall(question="async?"))

    assert result.answer == "answer for: async?"
    assert spans.tree() == [("ChainOfThought", [("Predict(question -> reasoning, answer)", [("ChatAdapter", [
        ("chat stub-model", [])])])])]
    assert spans.one("chat ").attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_async_react_tools_traced(spans, lm):
    agent = dspy.ReAct("question -> answer", tools=[search], max_iters=3)
    asyncio.run(agent.acall(question="async agent"))

    assert len(spans.trace_ids()) == 1
    assert spans.roots()[0].name == "invoke_agent ReAct"
    assert len(spans.named("execute_tool search")) == 1


def test_lm_error_is_recorded_and_raised_unchanged(spans, make_lm):
    failing = make_lm("error-500")
    with dspy.context(lm=failing):
        try:
            dspy.Predict("question -> answer")(question="boom")
        except Exception as error:  # noqa: BLE001
            raised = error
    assert raised is not None
    chat = spans.one("chat error-500")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes[attr.ERROR_TYPE] == type(raised).__qualname__
    assert any(e.name == "exception" for e in chat.events)
    assert spans.roots()[0].status.status_code is StatusCode.ERROR

    spans.clear()
    with dspy.context(lm=failing):
        uninstrumented_type = None
        from dspy_otel.instrumentation import DSPyInstrumentor

        DSPyInstrumentor().uninstrument()
        try:
            dspy.Predict("question -> answer")(question="boom")
        except Exception as error:  # noqa: BLE001
            uninstrumented_type = type(error)
    assert uninstrumented_type is type(raised)


def test_adapter_parse_failure_and_json_fallback(spans, make_lm):
    with dspy.context(lm=make_lm("garbage")):
        result = dspy.Predict("question -> answer: int")(question="How many?")

    assert isinstance(result.answer, int)
    predictor = spans.one("Predict(")
    assert [c.name for c in spans.children(predictor)] == ["ChatAdapter", "JSONAdapter"]
    chat_adapter, json_adapter = spans.children(predictor)
    assert chat_adapter.status.status_code is StatusCode.ERROR
    assert chat_adapter.attributes[attr.ERROR_TYPE] == "AdapterParseError"
    assert json_adapter.status.status_code is StatusCode.UNSET
    failure = [e for e in chat_adapter.events if e.name == attr.EVENT_ADAPTER_PARSE_FAILURE]
    assert len(failure) == 1 and failure[0].attributes["exception.type"] == "AdapterParseError"
    assert [e.name for e in json_adapter.events] == [attr.EVENT_ADAPTER_FORMAT, attr.EVENT_ADAPTER_PARSE]
    fallback = [e for e in predictor.events if e.name == attr.EVENT_ADAPTER_FALLBACK]
    assert len(fallback) == 1
    assert dict(fallback[0].attributes) == {"dspy.adapter.from": "ChatAdapter", "dspy.adapter.to": "JSONAdapter"}


def test_cache_hit_is_marked(spans, make_lm):
    cached_lm = make_lm("cache-model", cache=True)
    with dspy.context(lm=cached_lm):
        first = dspy.Predict("question -> answer")(question="cache me")
        second = dspy.Predict("question -> answer")(question="cache me")

    assert first.answer == second.answer
    hits = [s.attributes[attr.DSPY_LM_CACHE_HIT] for s in spans.named("chat ")]
    assert hits == [False, True]


def test_cached_tokens_reported(spans, make_lm):
    with dspy.context(lm=make_lm("cached-prompt")):
        dspy.Predict("question -> answer")(question="prompt cache")
    chat = spans.one("chat ")
    assert chat.attributes[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == chat.attributes[
        attr.GEN_AI_USAGE_INPUT_TOKENS] // 2


def test_litellm_engine_path(spans, make_lm):
    with dspy.context(lm=make_lm(engine="litellm")):
        dspy.Predict("question -> answer")(question="through litellm")
    chat = spans.one("chat stub-model")
    assert chat.attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert chat.attributes[attr.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")
    assert chat.attributes[attr.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
