"""Spans for language-model calls on any ``dspy.BaseLM`` (``dspy.LM``, ``DummyLM``, user subclasses).

``BaseLM.__call__`` / ``acall`` are wrapped on the base class: subclasses that implement
``forward`` are covered, and an override that calls ``super()`` still makes one span. The response
metadata (id, model, finish reasons, usage, cost, cache hit) is taken from the call result DSPy
finalizes (see :mod:`dspy_otel.instrumentation.dspy_compat`), so streamed calls carry usage too.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import context
from opentelemetry.trace import SpanKind

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.content import remember_secret
from dspy_otel.instrumentation.dspy_compat import ResponseInfo, response_info
from dspy_otel.instrumentation.tracing import ActiveCall, Handler, Telemetry, current_call

LM_CALL_KEY = context.create_key("dspy_otel.lm_call")

# Request parameters recorded (never the raw kwargs, which carry credentials and client settings).
REQUEST_PARAMETERS = {
    "temperature": attr.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": attr.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": attr.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": attr.GEN_AI_REQUEST_TOP_P,
    "top_k": attr.GEN_AI_REQUEST_TOP_K,
    "frequency_penalty": attr.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": attr.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "stop": attr.GEN_AI_REQUEST_STOP_SEQUENCES,
    "seed": attr.GEN_AI_REQUEST_SEED,
    "n": attr.GEN_AI_REQUEST_CHOICE_COUNT,
}
_CREDENTIAL_KWARGS = ("api_key", "azure_ad_token", "aws_secret_access_key", "aws_session_token")

# LiteLLM / DSPy model prefixes → gen_ai.provider.name well-known values.
PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai", "bedrock": "aws.bedrock", "cohere": "cohere", "mistral": "mistral_ai",
    "groq": "groq", "deepseek": "deepseek", "xai": "x_ai", "perplexity": "perplexity", "watsonx": "ibm.watsonx.ai",
}


def split_model(model: str) -> tuple[str | None, str]:
    """``"openai/gpt-4o"`` → ``("openai", "gpt-4o")``; no prefix → ``(None, model)``."""
    prefix, sep, name = model.partition("/")
    if not sep:
        return None, model
    return PROVIDERS.get(prefix, prefix), name


class LMHandler(Handler):
    """``BaseLM.__call__`` / ``acall``."""

    context_key = LM_CALL_KEY
    measures = True

    def __init__(self, telemetry: Telemetry, remote_cls: type | None) -> None:
        super().__init__(telemetry)
        self._remote_cls = remote_cls
        self._models: dict[str, tuple[str | None, str]] = {}
        self._static: dict[tuple[type, Any, Any], dict[str, Any]] = {}

    def skip(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        outer = current_call(LM_CALL_KEY)
        return outer is not None and outer.instance is instance

    def span_kind(self, instance: Any) -> SpanKind:
        return SpanKind.CLIENT if self._remote_cls and isinstance(instance, self._remote_cls) else SpanKind.INTERNAL

    def model(self, instance: Any) -> tuple[str | None, str]:
        model = str(getattr(instance, "model", "") or type(instance).__name__)
        found = self._models.get(model)
        if found is None:
            found = self._models[model] = split_model(model)
        return found

    def operation(self, instance: Any) -> str:
        return attr.OPERATION_TEXT_COMPLETION if getattr(instance, "model_type", "chat") == "text" else attr.OPERATION_CHAT

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"{self.operation(instance)} {self.model(instance)[1]}"

    def static_attributes(self, instance: Any) -> dict[str, Any]:
        key = (type(instance), getattr(instance, "model", None), getattr(instance, "model_type", "chat"))
        found = self._static.get(key)
        if found is None:
            found = self._static[key] = self._lm_attributes(instance)
        return found

    def _lm_attributes(self, lm: Any) -> dict[str, Any]:
        config = self.telemetry.config
        provider, model = self.model(lm)
        span_type = attr.SpanType.CHAT_MODEL if getattr(lm, "model_type", "chat") == "chat" else attr.SpanType.LLM
        found: dict[str, Any] = {**self.telemetry.span_type_attributes(span_type), attr.DSPY_LM_CLASS: type(lm).__name__}
        if config.gen_ai:
            found[attr.GEN_AI_OPERATION_NAME] = self.operation(lm)
            found[attr.GEN_AI_PROVIDER_NAME] = provider or "dspy"
            found[attr.GEN_AI_REQUEST_MODEL] = model
        if config.openinference:
            found[attr.LLM_MODEL_NAME] = model
            if provider:
                found[attr.LLM_PROVIDER] = provider
        return found

    def on_start(self, call: ActiveCall) -> None:
        span, lm, telemetry, config = call.span, call.instance, self.telemetry, self.telemetry.config
        defaults = getattr(lm, "kwargs", None) or {}
        for source in (defaults, call.kwargs):
            for key in _CREDENTIAL_KWARGS:
                remember_secret(source.get(key))
            headers = source.get("extra_headers") or source.get("headers")
            if isinstance(headers, dict):
                for value in headers.values():
                    remember_secret(value)
        params = {key: call.kwargs.get(key, defaults.get(key)) for key in REQUEST_PARAMETERS}
        params = {key: value for key, value in params.items() if value is not None}
        if config.gen_ai:
            for key, value in params.items():
                span.set_attribute(REQUEST_PARAMETERS[key], [value] if key == "stop" and isinstance(value, str) else value)
        if config.openinference:
            span.set_attribute(attr.LLM_INVOCATION_PARAMETERS, json.dumps(params, default=str))
        if config.captures_content:
            messages = call.kwargs.get("messages")
            prompt = call.kwargs.get("prompt", call.args[0] if call.args else None)
            if messages is None and isinstance(prompt, str):
                messages = [{"role": "user", "content": prompt}]
            clean = telemetry.clean(messages)  # redacted once, recorded up to three ways below
            telemetry.record_io(span, "input", {"messages": clean, **params} if clean is not None else params,
                                clean=True)
            if config.gen_ai and isinstance(clean, list):
                system = [m for m in clean if isinstance(m, dict) and m.get("role") == "system"]
                rest = [m for m in clean if not (isinstance(m, dict) and m.get("role") == "system")]
                if system:
                    telemetry.record_content(call, attr.GEN_AI_SYSTEM_INSTRUCTIONS,
                                             [{"type": "text", "content": _text(m.get("content"))} for m in system],
                                             clean=True)
                telemetry.record_content(call, attr.GEN_AI_INPUT_MESSAGES, [genai_message(m) for m in rest], clean=True)

    def on_end(self, call: ActiveCall, result: Any) -> None:
        span, telemetry, config = call.span, self.telemetry, self.telemetry.config
        info = self._info(call)
        found: dict[str, Any] = {attr.DSPY_LM_CACHE_HIT: info.cache_hit, attr.DSPY_LM_COST: info.cost}
        if config.gen_ai:
            found.update({
                attr.GEN_AI_RESPONSE_ID: info.response_id, attr.GEN_AI_RESPONSE_MODEL: info.model,
                attr.GEN_AI_USAGE_INPUT_TOKENS: info.input_tokens, attr.GEN_AI_USAGE_OUTPUT_TOKENS: info.output_tokens,
                attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: info.cache_read_tokens,
                attr.GEN_AI_RESPONSE_FINISH_REASONS: list(info.finish_reasons) or None,
            })
        if config.openinference:
            total = (info.input_tokens + info.output_tokens
                     if info.input_tokens is not None and info.output_tokens is not None else None)
            found.update({
                attr.LLM_TOKEN_COUNT_PROMPT: info.input_tokens, attr.LLM_TOKEN_COUNT_COMPLETION: info.output_tokens,
                attr.LLM_TOKEN_COUNT_CACHE_READ: info.cache_read_tokens, attr.LLM_TOKEN_COUNT_TOTAL: total,
            })
        span.set_attributes({key: value for key, value in found.items() if value is not None})
        if config.captures_content:
            telemetry.record_io(span, "output", result)
            if config.gen_ai and isinstance(result, list):
                reasons = info.finish_reasons or ()
                telemetry.record_content(call, attr.GEN_AI_OUTPUT_MESSAGES, [
                    genai_output(output, reasons[i] if i < len(reasons) else "stop") for i, output in enumerate(result)
                ])
            telemetry.emit_content_event(call)

    def after(self, call: ActiveCall, error: BaseException | None) -> None:
        metrics = self.telemetry.metrics
        if metrics is None:
            return
        provider, model = self.model(call.instance)
        info = self._info(call)
        metrics.record(call, self.operation(call.instance), provider or "dspy", model, info, error)

    @staticmethod
    def _info(call: ActiveCall) -> ResponseInfo:
        info = call.data.get("info")
        if info is None:
            info = call.data["info"] = response_info(call.data.get("result"))
        return info


def record_result(lm: Any, result: Any) -> None:
    """Hand DSPy's finalized call result to the active LM span of ``lm`` (see ``dspy_compat``)."""
    call = current_call(LM_CALL_KEY)
    if call is not None and call.instance is lm:
        call.data["result"] = result


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def genai_message(message: Any) -> dict[str, Any]:
    """An OpenAI-style chat message in the GenAI ``{"role", "parts"}`` shape."""
    if not isinstance(message, dict):
        return {"role": "user", "parts": [{"type": "text", "content": str(message)}]}
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append({"type": "text", "content": part.get("text", "")})
            elif isinstance(part, dict):
                parts.append({"type": str(part.get("type", "blob")), "content": part})
    elif content is not None:
        parts.append({"type": "text", "content": str(content)})
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function", {}) if isinstance(tool_call, dict) else {}
        parts.append({"type": "tool_call", "id": tool_call.get("id") if isinstance(tool_call, dict) else None,
                      "name": function.get("name"), "arguments": function.get("arguments")})
    if message.get("role") == "tool":
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": message.get("tool_call_id"),
                                          "response": _text(content)}]}
    return {"role": str(message.get("role", "user")), "parts": parts}


def genai_output(output: Any, finish_reason: str) -> dict[str, Any]:
    if isinstance(output, dict):
        message = {"role": "assistant", "content": output.get("text"), "tool_calls": output.get("tool_calls")}
    else:
        message = {"role": "assistant", "content": output}
    return {**genai_message(message), "finish_reason": finish_reason}
