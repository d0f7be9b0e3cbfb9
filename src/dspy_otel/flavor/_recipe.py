"""How to build a program again without pickle: its class import path and JSON constructor arguments.

User classes are rebuilt as ``cls(**model_config)``. DSPy's own ``Predict``, ``ChainOfThought`` and
``ReAct`` are rebuilt from their signature (an importable Signature class, or the signature text
with types) and, for ReAct, the import paths of its tool functions.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from mlflow.exceptions import MlflowException

from dspy_otel.flavor._imports import import_path, resolve
from dspy_otel.flavor._lm import is_secret_name, scrub

_BUILTIN_NAMES = {
    bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes", type(None): "None",
    list: "list", dict: "dict", tuple: "tuple", set: "set", typing.Any: "Any",
}


def _type_text(annotation: Any, custom: dict[str, str]) -> str:
    if annotation in _BUILTIN_NAMES:
        return _BUILTIN_NAMES[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return f"Union[{', '.join(_type_text(a, custom) for a in args)}]"
    if origin is not None:
        return f"{_type_text(origin, custom)}[{', '.join(_type_text(a, custom) for a in args)}]"
    if isinstance(annotation, type):
        custom[annotation.__name__] = import_path(annotation, "signature field type")
        return annotation.__name__
    raise MlflowException.invalid_parameter_value(
        f"Cannot save the signature field type {annotation!r}; use a Signature class defined in an "
        "importable module, or save the program as code."
    )


def signature_spec(signature: Any) -> dict[str, Any]:
    """An importable Signature class by path; a string-built one as ``"a: str -> b: int"`` text."""
    if signature.__name__ != "StringSignature":
        return {"class": import_path(signature, "signature")}
    custom: dict[str, str] = {}

    def fields(group: dict[str, Any]) -> str:
        return ", ".join(f"{name}: {_type_text(f.annotation, custom)}" for name, f in group.items())

    text = f"{fields(signature.input_fields)} -> {fields(signature.output_fields)}"
    return {"text": text, "custom_types": custom}


def build_signature(spec: dict[str, Any]) -> Any:
    import dspy

    if "class" in spec:
        return resolve(spec["class"], "signature")
    custom = {name: resolve(path, "signature field type") for name, path in spec.get("custom_types", {}).items()}
    return dspy.Signature(spec["text"], custom_types=custom or None)


def _json_kwargs(kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise MlflowException.invalid_parameter_value(f"{what} must be JSON-serializable: {exc}") from exc
    return dict(kwargs)


def _tool_paths(react: Any) -> list[str]:
    paths = []
    for name, tool in react.tools.items():
        if name == "finish":
            continue
        if getattr(tool.func, "__name__", None) != name:
            raise MlflowException.invalid_parameter_value(
                f"ReAct tool {name!r} is not a plain function under its own name; save the program as code."
            )
        paths.append(import_path(tool.func, "ReAct tool"))
    return paths


def program_recipe(program: Any, model_config: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON recipe that :func:`build_program` turns back into an (uncompiled) program."""
    import dspy

    cls = type(program)
    builtin = cls in (dspy.Predict, dspy.ChainOfThought, dspy.ReAct)
    if model_config and builtin:
        raise MlflowException.invalid_parameter_value(f"model_config is not used for {cls.__name__}; omit it.")
    secret = sorted(k for k in model_config or {} if is_secret_name(k))
    if secret:
        raise MlflowException.invalid_parameter_value(
            f"model_config keys {secret} look like credentials, which are never saved; read them from the "
            "environment in the program's constructor instead."
        )
    recipe: dict[str, Any] = {"class": import_path(cls, "program class")}
    if cls is dspy.Predict:  # Predict config is LM call settings: secret-named keys are dropped
        recipe["signature"] = signature_spec(program.signature)
        recipe["kwargs"] = _json_kwargs(scrub(program.config), "Predict config")
    elif cls is dspy.ChainOfThought:
        recipe["signature"] = signature_spec(program.predict.signature.delete("reasoning"))
        recipe["kwargs"] = _json_kwargs(scrub(program.predict.config), "ChainOfThought config")
    elif cls is dspy.ReAct:
        recipe["signature"] = signature_spec(program.signature)
        recipe["tools"] = _tool_paths(program)
        recipe["kwargs"] = {"max_iters": program.max_iters}
    else:
        recipe["kwargs"] = _json_kwargs(model_config or {}, "model_config")
    return recipe


def build_program(recipe: dict[str, Any]) -> Any:
    import dspy

    cls = resolve(recipe["class"], "program class")
    if not (isinstance(cls, type) and issubclass(cls, dspy.Module)):
        raise MlflowException(f"'{recipe['class']}' is not a dspy.Module subclass; refusing to build it.")
    kwargs = dict(recipe.get("kwargs") or {})
    if "signature" in recipe:
        kwargs["signature"] = build_signature(recipe["signature"])
    if "tools" in recipe:
        kwargs["tools"] = [resolve(path, "ReAct tool") for path in recipe["tools"]]
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise MlflowException(f"Building {recipe['class']}(**{sorted(kwargs)}) failed: {exc}") from exc
