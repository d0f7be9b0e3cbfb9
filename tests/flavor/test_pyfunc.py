"""pyfunc: every input form, per-call params, bounded batch pool, predict_stream, the llm/v1/chat task."""

from __future__ import annotations

import json
from typing import Any

import dspy
import mlflow.pyfunc
import pandas as pd
import pytest

import flavor_programs as fp
from dspy_otel.flavor import save_model

from ..conftest import API_KEY
from .conftest import HEADER_SECRET, PROGRAMS, stub_lm

CHAT = "llm/v1/chat"
HELLO = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}


@pytest.fixture(scope="module")
def models(openai_stub: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pyfunc")
    lm = stub_lm(openai_stub.base_url)
    programs = {
        "predict": (dspy.Predict("question -> answer"), {}),
        "two_inputs": (dspy.Predict("question, context -> answer"), {}),
        "cot": (dspy.ChainOfThought("question -> answer"), {}),
        "recorder": (fp.ThreadRecorder(), {"code_paths": [str(PROGRAMS)]}),
        "chat": (dspy.ChainOfThought("question -> answer"), {"task": CHAT}),
        "chat_two": (fp.TwoAnswers(), {"task": CHAT, "code_paths": [str(PROGRAMS)]}),
        "chat_list_field": (dspy.Predict("question -> answers: list[str]"), {"task": CHAT}),
        "chat_history": (dspy.Predict(dspy.Signature("question, history: History -> answer",
                                                     custom_types={"History": dspy.History})), {"task": CHAT}),
    }
    loaded = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", API_KEY)
        env.setenv("DSPY_OTEL_HEADER_X_API_KEY", HEADER_SECRET)
        env.setenv("DSPY_OTEL_MAX_WORKERS", "2")
        for name, (program, kwargs) in programs.items():
            program.set_lm(lm)
            save_model(program, root / name, **kwargs)
            loaded[name] = mlflow.pyfunc.load_model(str(root / name))
    return loaded


def test_dict_string_and_one_row_dataframe_give_one_answer(models: dict[str, Any]) -> None:
    model = models["predict"]
    expected = {"answer": "answer for: What is DSPy?"}
    assert model.predict({"question": "What is DSPy?"}) == expected
    assert model.predict("What is DSPy?") == expected
    assert model.predict(pd.DataFrame([{"question": "What is DSPy?"}])) == expected


def test_batches_keep_their_order(models: dict[str, Any]) -> None:
    questions = [f"question number {i}" for i in range(5)]
    expected = [{"answer": f"answer for: {q}"} for q in questions]
    model = models["predict"]
    assert model.predict([{"question": q} for q in questions]) == expected
    assert model.predict(questions) == expected
    assert model.predict(pd.DataFrame({"question": questions})) == expected


def test_multi_input_program_takes_named_fields(models: dict[str, Any]) -> None:
    model = models["two_inputs"]
    assert model.predict({"question": "Q1", "context": "C1"}) == {"answer": "answer for: Q1"}
    rows = model.predict(pd.DataFrame([{"question": "a", "context": "x"}, {"question": "b", "context": "y"}]))
    assert rows == [{"answer": "answer for: a"}, {"answer": "answer for: b"}]
    with pytest.raises(mlflow.exceptions.MlflowException, match="context"):
        model.predict({"question": "missing context"})


def test_batch_runs_on_a_bounded_pool(models: dict[str, Any]) -> None:
    fp.ThreadRecorder.threads.clear()
    answers = models["recorder"].predict([{"question": f"q{i}"} for i in range(6)])
    assert [a["answer"] for a in answers] == [f"answer for: q{i}" for i in range(6)]
    assert len(fp.ThreadRecorder.threads) == 6
    assert all(t.startswith("dspy-otel-predict") for t in fp.ThreadRecorder.threads)
    assert len(set(fp.ThreadRecorder.threads)) <= 2  # DSPY_OTEL_MAX_WORKERS=2


def test_params_reach_the_lm_for_that_call_only(models: dict[str, Any], openai_stub: Any) -> None:
    model = models["predict"]
    model.predict({"question": "with params"}, params={"temperature": 0.7, "max_tokens": 77})
    with_params = openai_stub.chat_requests()[-1]["body"]
    model.predict({"question": "without params"})
    without = openai_stub.chat_requests()[-1]["body"]
    assert with_params["temperature"] == 0.7
    assert 77 in (with_params.get("max_tokens"), with_params.get("max_completion_tokens"))
    assert without.get("temperature") != 0.7
    assert 77 not in (without.get("max_tokens"), without.get("max_completion_tokens"))


def test_predict_stream_yields_field_chunks_then_the_prediction(models: dict[str, Any]) -> None:
    items = list(models["cot"].predict_stream({"question": "stream this answer please"}))
    assert items[-1]["type"] == "prediction"
    final = items[-1]["outputs"]
    chunks = [i for i in items if i["type"] == "chunk"]
    assert {c["field"] for c in chunks} == {"reasoning", "answer"}
    assert len([c for c in chunks if c["field"] == "answer"]) > 1
    for field in ("reasoning", "answer"):
        assert "".join(c["chunk"] for c in chunks if c["field"] == field).strip() == final[field]


def test_chat_task_answers_openai_style(models: dict[str, Any]) -> None:
    response = models["chat"].predict(HELLO)
    assert response["object"] == "chat.completion"
    assert response["id"].startswith("chatcmpl-")
    assert response["model"] == "openai/stub-model"
    assert response["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "answer for: hello there"},
                                     "finish_reason": "stop"}]
    usage = response["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_task_with_a_list_of_predictions_gives_one_choice_each(models: dict[str, Any]) -> None:
    choices = models["chat_two"].predict(HELLO)["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "answer for: hello there"), (1, "answer for: again: hello there")]


def test_chat_task_with_a_list_output_field_returns_json_content(models: dict[str, Any]) -> None:
    content = models["chat_list_field"].predict(HELLO)["choices"][0]["message"]["content"]
    assert json.loads(content) == ["answers 1 of hello there", "answers 2 of hello there"]


def test_chat_streaming_gives_openai_chunks(models: dict[str, Any]) -> None:
    chunks = list(models["chat"].predict_stream(HELLO))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == "answer for: hello there"
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) > 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_chat_task_turns_earlier_messages_into_dspy_history(models: dict[str, Any], openai_stub: Any) -> None:
    request = {"messages": [
        {"role": "user", "content": "earlier question about spans"},
        {"role": "assistant", "content": "earlier answer about spans"},
        {"role": "user", "content": "follow-up"},
    ]}
    response = models["chat_history"].predict(request)
    assert response["choices"][0]["message"]["content"] == "answer for: follow-up"
    sent = [m["content"] for m in openai_stub.chat_requests()[-1]["body"]["messages"]]
    assert any("earlier question about spans" in str(c) for c in sent[1:-1])
    assert any("earlier answer about spans" in str(c) for c in sent[1:-1])
