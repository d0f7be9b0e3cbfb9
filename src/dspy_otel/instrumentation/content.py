"""Turning call inputs and outputs into span-safe text: JSON-able, redacted, bounded.

Never raises on odd values: cycles, Pydantic models, numpy arrays, bytes, DSPy objects and
anything else become JSON-able data or a short placeholder. Secrets are redacted by key
(``api_key``, ``Authorization``, ``*_token``, headers, user-configured keys), by value (known
credentials seen on LMs, ``Bearer …`` strings) and inside URLs (user info, token query parameters).
"""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any

REDACTED = "[REDACTED]"
TRUNCATION_MARK = "…[truncated {} chars]"

_SECRET_KEYS = frozenset({
    "api_key", "apikey", "token", "access_token", "refresh_token", "id_token", "auth", "authorization",
    "proxy_authorization", "password", "passwd", "secret", "client_secret", "credentials", "credential", "cookie",
    "set_cookie", "headers", "extra_headers", "x_api_key", "api_token", "session_token", "aws_secret_access_key",
    "aws_session_token", "azure_ad_token", "private_key", "bearer",
})
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_token", "_secret", "_password", "_credentials", "_private_key")
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{6,}", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/\s:@]+(?::[^/\s@]*)?@", re.I)
_URL_SECRET_QUERY = re.compile(r"(?P<name>[?&](?:api[_-]?key|key|token|access_token|sig|signature|password|secret)=)[^&#\s]+", re.I)
_MAX_DEPTH = 12
_MAX_ITEMS = 256
_MAX_ARRAY = 1024
_MIN_SECRET_LENGTH = 8

_SCRUBBED_CACHE_SIZE = 512
_SCRUBBED_MIN_LENGTH = 256  # long texts (prompts) repeat call after call: scrub each once
_known_secrets: tuple[str, ...] = ()
_known_lock = threading.Lock()
_secret_key_cache: dict[tuple[str, frozenset[str]], bool] = {}
_scrubbed: dict[str, str] = {}


def remember_secret(value: object) -> None:
    """Redact this credential (e.g. an LM's ``api_key``) wherever it would appear in recorded text."""
    global _known_secrets
    if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH and value not in _known_secrets:
        with _known_lock:
            if value not in _known_secrets:
                escaped = json.dumps(value)[1:-1]  # as it appears inside recorded JSON text
                _known_secrets = (*_known_secrets, value, *((escaped,) if escaped != value else ()))
                _scrubbed.clear()


def is_secret_key(key: str, extra: frozenset[str] = frozenset()) -> bool:
    found = _secret_key_cache.get((key, extra))
    if found is None:
        normalized = key.strip().lower().replace("-", "_")
        found = normalized in _SECRET_KEYS or normalized in extra or normalized.endswith(_SECRET_SUFFIXES)
        if len(_secret_key_cache) < 4096:
            _secret_key_cache[(key, extra)] = found
    return found


def scrub_text(text: str) -> str:
    """Remove credentials from free text (known secret values, bearer tokens, URL user info and token params)."""
    if len(text) < _SCRUBBED_MIN_LENGTH:
        return _scrub(text)
    found = _scrubbed.get(text)
    if found is None:
        if len(_scrubbed) >= _SCRUBBED_CACHE_SIZE:
            _scrubbed.clear()
        found = _scrubbed[text] = _scrub(text)
    return found


def _scrub(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    if "=" in text:
        text = _URL_SECRET_QUERY.sub(lambda m: f"{m.group('name')}{REDACTED}", text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered or "token" in lowered:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return text


def to_jsonable(value: Any, redact_keys: frozenset[str] = frozenset()) -> Any:
    """A JSON-serializable, redacted copy of ``value``; never raises."""
    return _convert(value, redact_keys, set(), 0)


def _convert(value: Any, extra: frozenset[str], active: set[int], depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return scrub_text(value)
    if value is None or kind is int or kind is bool:
        return value
    if kind is dict and depth < _MAX_DEPTH and id(value) not in active:  # the common case, inlined
        active.add(id(value))
        try:
            return _convert_mapping(value.items(), extra, active, depth + 1)
        except Exception:  # noqa: BLE001 - e.g. a key whose str() fails
            return "<dict>"
        finally:
            active.discard(id(value))
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return f"<{type(value).__name__}: max depth>"
    marker = id(value)
    if marker in active:
        return f"<cycle: {type(value).__name__}>"
    active.add(marker)
    try:
        return _convert_container(value, extra, active, depth + 1)
    except Exception:  # noqa: BLE001 - any odd object still becomes a placeholder
        return f"<{type(value).__name__}>"
    finally:
        active.discard(marker)


def _convert_container(value: Any, extra: frozenset[str], active: set[int], depth: int) -> Any:
    if isinstance(value, dict):
        return _convert_mapping(value.items(), extra, active, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        out = [_convert(v, extra, active, depth) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            out.append(f"<{len(items) - _MAX_ITEMS} more items>")
        return out
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    store = getattr(value, "_store", None)  # dspy.Example / dspy.Prediction
    if isinstance(store, dict):
        return _convert_mapping(store.items(), extra, active, depth)
    model_dump = getattr(value, "model_dump", None)  # Pydantic models, dspy.Type (Image, History, Tool, ...)
    if callable(model_dump) and not isinstance(value, type):
        return _convert(model_dump(mode="json"), extra, active, depth)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist) and hasattr(value, "dtype"):
        size = getattr(value, "size", 1)
        if size > _MAX_ARRAY:
            return f"<{type(value).__name__} shape={getattr(value, 'shape', '?')} dtype={value.dtype}>"
        return _convert(tolist(), extra, active, depth)
    return scrub_text(_short_repr(value))


def _convert_mapping(items: Any, extra: frozenset[str], active: set[int], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(items):
        if index >= _MAX_ITEMS:
            out["<more keys>"] = True
            break
        name = key if isinstance(key, str) else str(key)
        out[name] = REDACTED if is_secret_key(name, extra) and item else _convert(item, extra, active, depth)
    return out


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"
    return text if len(text) <= 1000 else text[:1000] + "…"


def dumps(value: Any, max_length: int, redact_keys: frozenset[str] = frozenset()) -> tuple[str, bool]:
    """``(json_text, truncated)``: ``value`` as redacted JSON, cut at ``max_length`` characters with a marker."""
    if isinstance(value, str):
        return truncate(json.dumps(scrub_text(value), ensure_ascii=False), max_length)
    text = _plain_json(value, redact_keys)
    if text is None:
        text = json.dumps(to_jsonable(value, redact_keys), ensure_ascii=False)
    return truncate(text, max_length)


def _plain_json(value: Any, extra: frozenset[str]) -> str | None:
    """Plain data (dicts, lists, strings, numbers; a DSPy Example/Prediction's fields) through the C JSON
    encoder and scrubbed as one text: the common case, several times faster than :func:`to_jsonable`.
    ``None`` when the value needs the careful path: not plain JSON, a cycle, or a secret-looking key."""
    try:
        store = getattr(value, "_store", None)
        text = _ENCODER.encode(store if isinstance(store, dict) else value)
    except Exception:  # noqa: BLE001 - TypeError (not JSON), ValueError (cycle, NaN), odd __getattr__, ...
        return None
    if any(is_secret_key(key, extra) for key in _JSON_KEY.findall(text)):
        return None
    return scrub_text(text)


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_JSON_KEY = re.compile(r'"([^"\\]{1,128})"\s*:')  # object keys (and the odd look-alike inside a string)


def truncate(text: str, max_length: int) -> tuple[str, bool]:
    if len(text) <= max_length:
        return text, False
    return text[:max_length] + TRUNCATION_MARK.format(len(text) - max_length), True
