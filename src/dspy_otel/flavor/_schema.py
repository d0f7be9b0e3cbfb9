"""MLflow model signatures from DSPy signatures (no LM call), and input-example validation."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, Array, ColSpec, DataType, ParamSchema, ParamSpec, Schema

CHAT_TASK = "llm/v1/chat"
TASKS = (CHAT_TASK,)

#: Per-call LM settings accepted through pyfunc ``params``.
PARAMS = ParamSchema([
    ParamSpec("temperature", DataType.double, None),
    ParamSpec("max_tokens", DataType.long, None),
    ParamSpec("top_p", DataType.double, None),
    ParamSpec("seed", DataType.long, None),
])

_SCALARS = {str: DataType.string, int: DataType.long, float: DataType.double, bool: DataType.boolean}


def io_fields(program: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input fields, output fields) of a program: name -> (annotation, required)."""
    import dspy

    signature = getattr(program, "signature", None)
    if isinstance(program, dspy.ChainOfThought):
        signature = program.predict.signature
    if isinstance(signature, type) and issubclass(signature, dspy.Signature):
        inputs = {n: (f.annotation, _required(f.annotation)) for n, f in signature.input_fields.items()}
        outputs = {n: (f.annotation, False) for n, f in signature.output_fields.items()}
        return inputs, outputs
    forward = getattr(type(program), "forward", None)
    if forward is None:
        raise MlflowException.invalid_parameter_value(f"{type(program).__qualname__} defines no forward() method.")
    params = list(inspect.signature(forward).parameters.values())[1:]  # without self
    inputs = {
        p.name: (str if p.annotation is inspect.Parameter.empty else p.annotation, p.default is inspect.Parameter.empty)
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    predictors = program.named_predictors()
    last = predictors[-1][1].signature.output_fields if predictors else {}
    return inputs, {n: (f.annotation, False) for n, f in last.items()}


def _required(annotation: Any) -> bool:
    return type(None) not in typing.get_args(annotation)


def _mlflow_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union and len(args) == 1:
        annotation = args[0]
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if typing.get_origin(annotation) is list and len(typing.get_args(annotation)) == 1:
        item = typing.get_args(annotation)[0]
        if item in _SCALARS:
            return Array(_SCALARS[item])
    return AnyType()


def infer_signature(program: Any, task: str | None) -> ModelSignature:
    if task == CHAT_TASK:
        from mlflow.models.rag_signatures import SIGNATURE_FOR_LLM_INFERENCE_TASK

        chat = SIGNATURE_FOR_LLM_INFERENCE_TASK[CHAT_TASK]
        return ModelSignature(inputs=chat.inputs, outputs=chat.outputs, params=PARAMS)
    inputs, outputs = io_fields(program)
    if not inputs:
        raise MlflowException.invalid_parameter_value(
            f"{type(program).__qualname__} has no input fields to build a model signature from; pass signature=."
        )
    if len(inputs) == 1 and _mlflow_type(next(iter(inputs.values()))[0]) == DataType.string:
        # Unnamed, so that MLflow's schema enforcement lets a bare string through as well as a dict.
        input_schema = Schema([ColSpec(DataType.string)])
    else:
        input_schema = Schema([ColSpec(_mlflow_type(a), n, required=r) for n, (a, r) in inputs.items()])
    return ModelSignature(
        inputs=input_schema,
        outputs=Schema([ColSpec(_mlflow_type(a), n, required=False) for n, (a, _) in outputs.items()]),
        params=PARAMS,
    )


def example_records(example: Any, input_names: list[str]) -> list[dict[str, Any]]:
    """An input example as records: a dict, a list of dicts, a DataFrame or (single input) a string."""
    import pandas as pd

    if isinstance(example, str) and len(input_names) == 1:
        return [{input_names[0]: example}]
    if isinstance(example, dict):
        return [example]
    if isinstance(example, pd.DataFrame):
        return example.to_dict(orient="records")
    if isinstance(example, list) and example and all(isinstance(e, dict) for e in example):
        return example
    raise MlflowException.invalid_parameter_value(
        f"input_example must be a dict of input fields, a list of them, a DataFrame or (for a single-input "
        f"program) a string; got {type(example).__name__}."
    )


def validate_example(example: Any, signature: ModelSignature, task: str | None) -> None:
    """Check ``example`` against the signature's inputs, without running the program."""
    if task == CHAT_TASK:
        messages = example.get("messages") if isinstance(example, dict) else None
        if not (isinstance(messages, list) and messages and all(isinstance(m, dict) and "role" in m for m in messages)):
            raise MlflowException.invalid_parameter_value(
                "input_example for task='llm/v1/chat' must look like {'messages': [{'role': 'user', 'content': ...}]}."
            )
        return
    if not signature.inputs.has_input_names():
        return  # a single string input: any one-field record or string fits
    names = signature.inputs.input_names()
    required = {c.name for c in signature.inputs.inputs if c.required}
    for record in example_records(example, names):
        missing, unknown = sorted(required - set(record)), sorted(set(record) - set(names))
        if missing or unknown:
            raise MlflowException.invalid_parameter_value(
                f"input_example does not match the program's inputs {names}: missing {missing}, unknown {unknown}."
            )
