"""A deterministic OpenAI-compatible chat server on 127.0.0.1, for tests, benchmarks and the demo.

It answers ``POST /v1/chat/completions`` (plain and SSE streaming) and ``POST /v1/embeddings``
with replies derived only from the request, so DSPy programs run end to end over real HTTP
without an LLM. Replies follow the DSPy adapter a request was formatted by: ``[[ ## field ## ]]``
sections for ChatAdapter, a JSON object for JSONAdapter, and for ReAct it calls each offered tool
once, then ``finish``. Token usage is reported on every answer.

Behaviour is steered by the requested model name:

- ``error-<status>`` (e.g. ``error-500``, ``error-401``) answers with that HTTP status;
- ``garbage`` answers text no adapter can parse unless JSON is asked for, which makes ChatAdapter
  fall back to JSONAdapter;
- ``cached`` reports ``prompt_tokens_details.cached_tokens``.

Scripted replies can be queued with :meth:`OpenAIStub.script`; every request is kept in
:attr:`OpenAIStub.requests` (with its headers) for assertions.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]")
_OUTPUT_FIELD = re.compile(r"^\d+\. `(\w+)` \(([^)]*(?:\([^)]*\))?[^)]*)\)", re.M)
_TOOL = re.compile(r"^\s*\(\d+\) (\w+)(?:, whose description is <desc>.*?</desc>)?\. It takes arguments (\{.*\})\.$", re.M)
_LITERAL = re.compile(r"Literal\[(.*)\]")


class OpenAIStub:
    """Start with :meth:`start` (or use as a context manager); ``base_url`` ends in ``/v1``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self._scripts: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, model: str, *replies: str) -> None:
        """Queue literal assistant replies for requests to ``model`` (used first, in order)."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(replies)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # -- reply construction -------------------------------------------------------------

    def _next_script(self, model: str) -> str | None:
        with self._lock:
            queue = self._scripts.get(model)
            return queue.popleft() if queue else None

    def reply_text(self, body: dict[str, Any]) -> str:
        model = body.get("model", "")
        scripted = self._next_script(model)
        if scripted is not None:
            return scripted
        messages = body.get("messages") or []
        system = _text(messages[0]) if messages and messages[0].get("role") == "system" else ""
        last_user = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        wants_json = body.get("response_format") is not None or "JSON object" in last_user
        if "garbage" in model and not wants_json:
            return "I cannot follow the requested format."
        fields = _output_fields(system)
        values = {name: _value_for(name, type_name, system, last_user) for name, type_name in fields}
        if wants_json:
            return json.dumps(values)
        if not fields:
            return f"Echo: {last_user[:200]}"
        parts = [f"[[ ## {name} ## ]]\n{_render(value)}" for name, value in values.items()]
        return "\n\n".join(parts) + "\n\n[[ ## completed ## ]]"

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model", "stub")
        tools = body.get("tools") or []
        already_called = any(m.get("role") == "tool" for m in body.get("messages") or [])
        message: dict[str, Any] = {"role": "assistant"}
        finish = "stop"
        if tools and not already_called:
            function = tools[0].get("function", {})
            arguments = _arguments_for(function.get("parameters", {}).get("properties", {}))
            message["content"] = None
            message["tool_calls"] = [{
                "id": "call_" + _digest(json.dumps(body.get("messages"), sort_keys=True))[:12],
                "type": "function",
                "function": {"name": function.get("name", "tool"), "arguments": json.dumps(arguments)},
            }]
            finish = "tool_calls"
            text = json.dumps(message["tool_calls"])
        else:
            text = self.reply_text(body)
            message["content"] = text
        return {
            "id": "chatcmpl-" + _digest(json.dumps(body, sort_keys=True, default=str))[:24],
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(body, text),
        }


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                return
            with stub._lock:
                stub.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            if stub.latency:
                time.sleep(stub.latency)
            model = str(body.get("model", ""))
            status = re.search(r"error-(\d{3})", model)
            if status:
                code = int(status.group(1))
                self._json(code, {"error": {"message": f"stub error {code}", "type": "stub_error", "code": code}})
            elif self.path.endswith("/embeddings"):
                self._json(200, _embeddings(body))
            elif not self.path.endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"unknown path {self.path}"}})
            elif body.get("stream"):
                self._stream(stub.completion(body), body)
            else:
                self._json(200, stub.completion(body))

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, completion: dict[str, Any], body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            choice = completion["choices"][0]
            base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
            chunks: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            if choice["message"].get("tool_calls"):
                calls = [{"index": i, **c} for i, c in enumerate(choice["message"]["tool_calls"])]
                chunks.append({"tool_calls": calls})
            else:
                text = choice["message"]["content"]
                chunks += [{"content": text[i:i + 16]} for i in range(0, len(text), 16)]
            for delta in chunks:
                self._event(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            self._event(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
            if (body.get("stream_options") or {}).get("include_usage", True):
                self._event(base | {"choices": [], "usage": completion["usage"]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

    return Handler


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _output_fields(system: str) -> list[tuple[str, str]]:
    _, _, outputs = system.partition("Your output fields are:")
    outputs = outputs.split("All interactions will be structured", 1)[0]
    return _OUTPUT_FIELD.findall(outputs)


def _value_for(name: str, type_name: str, system: str, user: str) -> Any:
    literal = _LITERAL.search(type_name)
    if name == "next_tool_name" and literal:
        return _next_tool(system, user)
    if name == "next_tool_args":
        return _arguments_for(_tool_arguments(system).get(_next_tool(system, user), {}))
    if literal:
        return ast.literal_eval(f"[{literal.group(1)}]")[0]
    subject = _first_input(user)
    lowered = type_name.lower()
    if lowered.startswith("int"):
        return len(subject) % 97
    if lowered.startswith("float"):
        return round((len(subject) % 97) / 7, 3)
    if lowered.startswith("bool"):
        return len(subject) % 2 == 0
    if lowered.startswith("list"):
        return [f"{name} {i} of {subject[:40]}" for i in (1, 2)]
    if lowered.startswith("dict"):
        return {"key": subject[:40]}
    return f"{name} for: {subject[:120]}"


def _first_input(user: str) -> str:
    match = _SECTION.search(user)
    if not match:
        return user.strip()
    rest = user[match.end():]
    nxt = _SECTION.search(rest)
    return (rest[: nxt.start()] if nxt else rest).strip().splitlines()[0] if rest.strip() else ""


def _tool_arguments(system: str) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for name, args in _TOOL.findall(system):
        try:
            tools[name] = ast.literal_eval(args)
        except (ValueError, SyntaxError):
            tools[name] = {}
    return tools


def _next_tool(system: str, user: str) -> str:
    """ReAct: call each offered tool once in order, then ``finish``."""
    tools = [t for t in _tool_arguments(system) if t != "finish"]
    done = len(re.findall(r"\[\[ ## tool_name_\d+ ## \]\]", user))
    return tools[done] if done < len(tools) else "finish"


def _arguments_for(properties: dict[str, Any]) -> dict[str, Any]:
    samples = {"string": "dspy", "integer": 3, "number": 1.5, "boolean": True, "array": [], "object": {}}
    return {name: samples.get(spec.get("type", "string"), "dspy") for name, spec in properties.items()}


def _render(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt = sum(len(_text(m)) for m in body.get("messages") or []) // 4 + 1
    completion = len(text) // 4 + 1
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if "cached" in str(body.get("model", "")):
        usage["prompt_tokens_details"] = {"cached_tokens": prompt // 2}
    return usage


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    data = []
    for i, text in enumerate(inputs):
        digest = hashlib.sha256(str(text).encode()).digest()
        data.append({"object": "embedding", "index": i, "embedding": [b / 255 for b in digest[:8]]})
    tokens = sum(len(str(t)) // 4 + 1 for t in inputs)
    return {"object": "list", "data": data, "model": body.get("model", "stub"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def main() -> None:
    """``python -m dspy_otel.testing.openai_stub [port]``: serve until interrupted."""
    import sys

    stub = OpenAIStub(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(stub.base_url, flush=True)
    try:
        stub._thread.join()
    except KeyboardInterrupt:
        stub.stop()


if __name__ == "__main__":
    main()
