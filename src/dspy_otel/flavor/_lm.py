"""LM settings <-> a JSON record with no secrets; credentials come back from the environment.

Saved: the model name and an allow-list of request settings. Never saved: API keys, secret-looking
headers (restored from ``DSPY_OTEL_HEADER_<NAME>``), secret-looking keys anywhere in ``extra_body``,
and userinfo / secret query parameters in ``api_base``. Anything else outside the allow-list is
dropped, and its *name* is logged.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlflow.exceptions import MlflowException

_logger = logging.getLogger(__name__)

#: Request settings copied into a saved model (every other LM kwarg is dropped).
ALLOWED_LM_KWARGS = frozenset({
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "top_k", "n", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "reasoning_effort",
    "response_format", "timeout", "api_version", "rollout_id", "parallel_tool_calls",
})
_SECRET_NAME = re.compile(
    r"auth|secret|passw|credential|cookie|session|signature|private|bearer|^sig$|key($|[-_])|token($|[-_])", re.I
)
_HEADER_ENV_PREFIX = "DSPY_OTEL_HEADER_"


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def sanitize_url(url: str) -> str:
    """Drop userinfo, secret-looking query parameters and the fragment from ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_secret_name(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(value: Any) -> Any:
    """Recursively drop secret-named keys from dicts."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def provider_env_prefix(model: str) -> str:
    """``openai/gpt-4o`` -> ``OPENAI``; models without a provider prefix are OpenAI's (DSPy's default)."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return re.sub(r"\W", "_", provider).upper()


def header_env_var(header: str) -> str:
    return _HEADER_ENV_PREFIX + re.sub(r"\W", "_", header).upper()


def lm_to_record(lm: Any) -> dict[str, Any]:
    """A JSON-safe, secret-free description of a ``dspy.LM``."""
    import dspy

    if type(lm) is not dspy.LM:
        raise MlflowException.invalid_parameter_value(
            f"Only dspy.LM language models can be saved, got {type(lm).__module__}.{type(lm).__qualname__}. "
            "Save the program without it and attach it again after loading (program.set_lm(...))."
        )
    engine = getattr(lm, "_engine_spec", "auto")
    if not isinstance(engine, str):
        raise MlflowException.invalid_parameter_value(
            "An LM with a custom engine object cannot be saved; attach it again after loading."
        )
    kwargs = dict(lm.kwargs)
    prefix = provider_env_prefix(lm.model)
    record: dict[str, Any] = {
        "model": lm.model,
        "model_type": lm.model_type,
        "cache": lm.cache,
        "num_retries": getattr(lm, "num_retries", 3),
        "kwargs": {k: scrub(v) for k, v in kwargs.items() if k in ALLOWED_LM_KWARGS and v is not None},
        "env": {},
    }
    if engine != "auto":
        record["engine"] = engine
    if getattr(lm, "use_developer_role", False):
        record["use_developer_role"] = True
    if kwargs.get("api_key"):
        record["env"]["api_key"] = f"{prefix}_API_KEY"
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if base:
        record["api_base"] = sanitize_url(str(base))
    headers = kwargs.get("extra_headers") or {}
    if headers:
        record["kwargs"]["extra_headers"] = {k: v for k, v in headers.items() if not is_secret_name(k)}
        record["env"]["extra_headers"] = {k: header_env_var(k) for k in headers if is_secret_name(k)}
    if kwargs.get("extra_body"):
        record["kwargs"]["extra_body"] = scrub(kwargs["extra_body"])
    handled = ALLOWED_LM_KWARGS | {"api_key", "api_base", "base_url", "extra_headers", "extra_body"}
    dropped = sorted(k for k in kwargs if k not in handled and kwargs[k] is not None)
    if dropped:
        _logger.warning("Not saving LM settings outside the allow-list for %s: %s", lm.model, ", ".join(dropped))
    return record


def _required_env(var: str, what: str, model: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise MlflowException(
            f"The saved LM '{model}' needs {what} from the environment variable {var}, which is not set. "
            "Credentials are never stored in the model; set it in the loading process."
        )
    return value


def lm_from_record(record: dict[str, Any]) -> Any:
    """Build a ``dspy.LM`` from :func:`lm_to_record` output, with credentials from the environment.

    ``<PROVIDER>_API_BASE`` (e.g. ``OPENAI_API_BASE``), when set, replaces the saved ``api_base``.
    """
    import dspy

    model = record["model"]
    env = record.get("env") or {}
    kwargs: dict[str, Any] = dict(record.get("kwargs") or {})
    if "api_key" in env:
        kwargs["api_key"] = _required_env(env["api_key"], "an API key", model)
    api_base = os.environ.get(f"{provider_env_prefix(model)}_API_BASE") or record.get("api_base")
    if api_base:
        kwargs["api_base"] = api_base
    secret_headers = env.get("extra_headers") or {}
    if secret_headers:
        headers = dict(kwargs.get("extra_headers") or {})
        for name, var in secret_headers.items():
            headers[name] = _required_env(var, f"the '{name}' header", model)
        kwargs["extra_headers"] = headers
    for key in ("engine", "use_developer_role"):
        if key in record:
            kwargs[key] = record[key]
    return dspy.LM(
        model,
        model_type=record.get("model_type", "chat"),
        cache=record.get("cache", True),
        num_retries=record.get("num_retries", 3),
        **kwargs,
    )
