"""Instrumentation settings: from ``instrument()`` arguments first, then ``OTEL_*`` / ``DSPY_OTEL_*`` variables."""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field

from dspy_otel.instrumentation import attributes as attr

logger = logging.getLogger(__name__)

ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_SEMCONV = "DSPY_OTEL_SEMCONV"
ENV_MAX_CONTENT_LENGTH = "DSPY_OTEL_MAX_CONTENT_LENGTH"
ENV_REDACT_KEYS = "DSPY_OTEL_REDACT_KEYS"

DEFAULT_MAX_CONTENT_LENGTH = 16_384


class ContentCapture(enum.Enum):
    """Where message content goes; the values of OpenTelemetry's GenAI utilities."""

    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_spans(self) -> bool:
        return self in (ContentCapture.SPAN_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def on_events(self) -> bool:
        return self in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)


def parse_capture_content(value: bool | str | ContentCapture | None) -> ContentCapture:
    """``True``/``"true"`` → SPAN_ONLY, ``False``/``"false"``/unset → NO_CONTENT, or a ContentCapture name."""
    if isinstance(value, ContentCapture):
        return value
    if value is None:
        return ContentCapture.NO_CONTENT
    if isinstance(value, bool):
        return ContentCapture.SPAN_ONLY if value else ContentCapture.NO_CONTENT
    text = str(value).strip()
    lowered = text.lower()
    if lowered in {"true", "1", "yes", "on"}:
        return ContentCapture.SPAN_ONLY
    if lowered in {"false", "0", "no", "off", ""}:
        return ContentCapture.NO_CONTENT
    try:
        return ContentCapture[text.upper()]
    except KeyError:
        logger.warning("dspy-otel: unknown content capture value %r; recording no content", value)
        return ContentCapture.NO_CONTENT


def parse_semconv(value: str | list[str] | tuple[str, ...] | frozenset[str] | None) -> frozenset[str]:
    """``"gen_ai,mlflow"`` (default), ``"openinference"``, ``"all"``; unknown names are logged and ignored."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return attr.DEFAULT_FAMILIES
    names = value.split(",") if isinstance(value, str) else list(value)
    families: set[str] = set()
    for name in (n.strip().lower() for n in names):
        if name == "all":
            families |= attr.ALL_FAMILIES
        elif name in attr.ALL_FAMILIES:
            families.add(name)
        elif name:
            logger.warning("dspy-otel: unknown semantic convention family %r ignored (known: %s, all)",
                           name, ", ".join(sorted(attr.ALL_FAMILIES)))
    return frozenset(families) or attr.DEFAULT_FAMILIES


def _positive_int(value: int | str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        logger.warning("dspy-otel: invalid %s %r; using %d", ENV_MAX_CONTENT_LENGTH, value, default)
        return default
    return number if number > 0 else default


@dataclass(frozen=True)
class InstrumentationConfig:
    capture: ContentCapture = ContentCapture.NO_CONTENT
    families: frozenset[str] = attr.DEFAULT_FAMILIES
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    redact_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def gen_ai(self) -> bool:
        return attr.FAMILY_GEN_AI in self.families

    @property
    def mlflow(self) -> bool:
        return attr.FAMILY_MLFLOW in self.families

    @property
    def openinference(self) -> bool:
        return attr.FAMILY_OPENINFERENCE in self.families

    @property
    def content_on_spans(self) -> bool:
        return self.capture.on_spans

    @property
    def captures_content(self) -> bool:
        return self.capture is not ContentCapture.NO_CONTENT

    @classmethod
    def resolve(
        cls,
        capture_content: bool | str | ContentCapture | None = None,
        semconv: str | list[str] | None = None,
        max_content_length: int | None = None,
        redact_keys: list[str] | tuple[str, ...] | None = None,
    ) -> InstrumentationConfig:
        capture = capture_content if capture_content is not None else os.environ.get(ENV_CAPTURE_CONTENT)
        keys = redact_keys if redact_keys is not None else os.environ.get(ENV_REDACT_KEYS, "").split(",")
        return cls(
            capture=parse_capture_content(capture),
            families=parse_semconv(semconv if semconv is not None else os.environ.get(ENV_SEMCONV)),
            max_content_length=_positive_int(
                max_content_length if max_content_length is not None else os.environ.get(ENV_MAX_CONTENT_LENGTH),
                DEFAULT_MAX_CONTENT_LENGTH,
            ),
            redact_keys=frozenset(k.strip().lower() for k in keys if k and k.strip()),
        )
