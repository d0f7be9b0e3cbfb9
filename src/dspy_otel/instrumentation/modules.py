"""Spans for ``dspy.Module`` calls: programs and sub-modules (CHAIN), predictors, and ReAct-style agents.

Only ``Module.__call__`` / ``Module.acall`` are wrapped. ``Predict.__call__`` reaches them through
``super()``, so a predictor call makes exactly one span, and user subclasses are covered without
registration. What kind of span a module gets is decided once per class.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

from opentelemetry import context

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.instrumentation.tracing import ActiveCall, Handler, Telemetry

ROOT_MODULE_KEY = context.create_key("dspy_otel.root_module")

CHAIN, PREDICTOR, AGENT = "chain", "predictor", "agent"


class SignatureInfo(NamedTuple):
    name: str
    input_fields: list[str]
    output_fields: list[str]


class Signatures:
    """Low-cardinality names and field lists of signatures, computed once per signature class."""

    def __init__(self) -> None:
        self._info: weakref.WeakKeyDictionary[type, SignatureInfo] = weakref.WeakKeyDictionary()

    def __call__(self, signature: Any) -> SignatureInfo:
        try:
            return self._info[signature]
        except (KeyError, TypeError):
            pass
        name = getattr(signature, "__name__", None) or type(signature).__name__
        if name == "StringSignature":
            name = getattr(signature, "signature", None) or name  # "question -> answer"
        info = SignatureInfo(name, list(signature.input_fields), list(signature.output_fields))
        try:
            self._info[signature] = info
        except TypeError:
            pass
        return info


class PredictorPaths:
    """``named_predictors()`` names of predictors, per root program, recomputed when the program changes."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._paths: dict[int, tuple[weakref.ref[Any] | None, dict[int, str]]] = {}

    def __call__(self, root: Any, predictor: Any) -> str | None:
        entry = self._paths.get(id(root))
        if entry is not None and (entry[0] is None or entry[0]() is root) and id(predictor) in entry[1]:
            return entry[1][id(predictor)]
        mapping = {id(p): name for name, p in root.named_predictors()}
        if len(self._paths) >= self._capacity:
            self._paths.pop(next(iter(self._paths)))
        try:
            ref: weakref.ref[Any] | None = weakref.ref(root)
        except TypeError:
            ref = None
        self._paths[id(root)] = (ref, mapping)
        return mapping.get(id(predictor))


class ModuleHandler(Handler):
    """``dspy.Module.__call__`` / ``acall``."""

    def __init__(self, telemetry: Telemetry, predict_cls: type, react_cls: type | None) -> None:
        super().__init__(telemetry)
        self._predict_cls = predict_cls
        self._react_cls = react_cls
        self._categories: dict[type, str] = {}
        self._static: dict[Any, dict[str, Any]] = {}
        self.signatures = Signatures()
        self.predictor_path = PredictorPaths()

    def category(self, instance: Any) -> str:
        cls = type(instance)
        found = self._categories.get(cls)
        if found is None:
            if issubclass(cls, self._predict_cls):
                found = PREDICTOR
            elif (self._react_cls is not None and issubclass(cls, self._react_cls)) or isinstance(
                getattr(instance, "tools", None), dict
            ):
                found = AGENT
            else:
                found = CHAIN
            self._categories[cls] = found
        return found

    def name(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        category = self.category(instance)
        cls_name = type(instance).__name__
        if category == PREDICTOR:
            return f"{cls_name}({self.signatures(instance.signature).name})"
        if category == AGENT:
            return f"invoke_agent {cls_name}"
        return cls_name

    def extra_context(self, call: ActiveCall, ctx: context.Context) -> context.Context:
        if context.get_value(ROOT_MODULE_KEY, ctx) is None:
            ctx = context.set_value(ROOT_MODULE_KEY, call.instance, ctx)
        return ctx

    def static_attributes(self, instance: Any) -> dict[str, Any]:
        cls = type(instance)
        key = (cls, instance.signature) if self.category(instance) == PREDICTOR else cls
        found = self._static.get(key)
        if found is None:
            found = self._static[key] = self._class_attributes(instance)
        return found

    def _class_attributes(self, instance: Any) -> dict[str, Any]:
        telemetry, cls = self.telemetry, type(instance)
        category = self.category(instance)
        found: dict[str, Any] = {attr.DSPY_MODULE_CLASS: f"{cls.__module__}.{cls.__qualname__}"}
        if category == PREDICTOR:
            found.update(telemetry.span_type_attributes(attr.SpanType.LLM))
            signature = self.signatures(instance.signature)
            found[attr.DSPY_SIGNATURE_NAME] = signature.name
            found[attr.DSPY_SIGNATURE_INPUT_FIELDS] = signature.input_fields
            found[attr.DSPY_SIGNATURE_OUTPUT_FIELDS] = signature.output_fields
        elif category == AGENT:
            found.update(telemetry.span_type_attributes(attr.SpanType.AGENT))
            if telemetry.config.gen_ai:
                found[attr.GEN_AI_OPERATION_NAME] = attr.OPERATION_INVOKE_AGENT
                found[attr.GEN_AI_AGENT_NAME] = cls.__name__
        else:
            found.update(telemetry.span_type_attributes(attr.SpanType.CHAIN))
        return found

    def on_start(self, call: ActiveCall) -> None:
        span, instance = call.span, call.instance
        category = self.category(instance)
        if category == PREDICTOR:
            demos = call.kwargs.get("demos", getattr(instance, "demos", None)) or ()
            span.set_attribute(attr.DSPY_DEMOS_COUNT, len(demos))
            root = context.get_value(ROOT_MODULE_KEY)
            path = self.predictor_path(root, instance) if root is not None else None
            if path:
                span.set_attribute(attr.DSPY_PREDICTOR_PATH, path)
        elif category == AGENT:
            span.set_attribute(attr.DSPY_AGENT_TOOLS, [name for name in getattr(instance, "tools", {}) if name != "finish"])
        self.telemetry.record_io(span, "input", call_inputs(call.args, call.kwargs))

    def on_end(self, call: ActiveCall, result: Any) -> None:
        if self.category(call.instance) == AGENT:
            trajectory = _get(result, "trajectory")
            if isinstance(trajectory, dict):
                iterations = sum(1 for key in trajectory if str(key).startswith("tool_name_"))
                call.span.set_attribute(attr.DSPY_AGENT_ITERATIONS, iterations)
        self.telemetry.record_io(call.span, "output", result)


def call_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Keyword arguments as recorded inputs; positional ones under ``args``."""
    return {"args": list(args), **kwargs} if args else kwargs


def _get(result: Any, key: str) -> Any:
    try:
        return result[key] if isinstance(result, dict) else getattr(result, key, None)
    except Exception:  # noqa: BLE001
        return None
