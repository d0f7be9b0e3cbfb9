"""task="llm/v1/chat": OpenAI-compatible requests in, chat completions (and chunks) out."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from mlflow.exceptions import MlflowException


def messages_of(model_input: Any) -> list[dict[str, Any]]:
    """``{"messages": [...]}`` (or the one-row DataFrame MLflow's schema enforcement makes of it)."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if len(model_input) != 1 or "messages" not in model_input:
            raise MlflowException.invalid_parameter_value("A chat request is one {'messages': [...]} object.")
        model_input = model_input.to_dict(orient="records")[0]
    messages = model_input.get("messages") if isinstance(model_input, dict) else None
    if not isinstance(messages, list) or not messages:
        raise MlflowException.invalid_parameter_value("A chat request needs a non-empty 'messages' list.")
    return [dict(m) for m in messages]


def program_inputs(inputs: dict[str, Any], output_name: str | None, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The last user message feeds the one text input (a ``messages`` input gets the whole list);
    earlier user/assistant turns fill a ``dspy.History`` input, if the program has one."""
    import dspy

    history = [n for n, (annotation, _) in inputs.items() if annotation is dspy.History]
    text = [n for n in inputs if n not in history]
    if len(text) != 1 or len(history) > 1:
        raise MlflowException.invalid_parameter_value(
            f"task='llm/v1/chat' needs a program with one input field (plus an optional dspy.History), got {list(inputs)}."
        )
    name = text[0]
    if name == "messages":
        return {name: messages}
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is None:
        raise MlflowException.invalid_parameter_value("A chat request needs at least one user message.")
    kwargs: dict[str, Any] = {name: _text(messages[last_user].get("content"))}
    if history:
        turns, earlier = [], messages[:last_user]
        for question, answer in zip(earlier, earlier[1:]):
            if question.get("role") == "user" and answer.get("role") == "assistant":
                turns.append({name: _text(question.get("content")), output_name or "answer": _text(answer.get("content"))})
        kwargs[history[0]] = dspy.History(messages=turns)
    return kwargs


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def content_field(outputs: dict[str, Any]) -> str:
    """The output field that becomes the assistant message: the last one (after reasoning/trajectory)."""
    return list(outputs)[-1]


def content_of(outputs: dict[str, Any]) -> str:
    value = outputs[content_field(outputs)] if outputs else ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def completion(results: list[dict[str, Any]], model: str, usage: dict[str, int]) -> dict[str, Any]:
    """One choice per prediction (a program may return a list of them)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": content_of(r)}, "finish_reason": "stop"}
            for i, r in enumerate(results)
        ],
        "usage": usage,
    }


def chunk(completion_id: str, model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def total_usage(usage_by_model: dict[str, Any]) -> dict[str, int]:
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for entry in (usage_by_model or {}).values():
        for key in totals:
            totals[key] += int((entry or {}).get(key) or 0)
    return totals
