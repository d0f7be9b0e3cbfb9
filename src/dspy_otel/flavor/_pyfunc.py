"""The pyfunc face of a loaded program: batch predict, per-call params, streaming, the chat task."""

from __future__ import annotations

import copy
import math
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlflow.exceptions import MlflowException

from dspy_otel.flavor import _chat
from dspy_otel.flavor._schema import CHAT_TASK, io_fields

#: Upper bound on concurrent program calls for one batch (``DSPY_OTEL_MAX_WORKERS``).
DEFAULT_MAX_WORKERS = 8


def jsonable(value: Any) -> Any:
    """Predictions and whatever they hold, as JSON-friendly Python values."""
    import dspy
    import pydantic

    if isinstance(value, dspy.Prediction):
        value = value.toDict()
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class DspyPyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps for a ``dspy_otel`` model."""

    def __init__(self, program: Any, task: str | None = None) -> None:
        self.program = program
        self.task = task
        inputs, outputs = io_fields(program)
        self.inputs = inputs
        self.input_names = list(inputs)
        self.output_names = list(outputs)
        self.max_workers = int(os.environ.get("DSPY_OTEL_MAX_WORKERS", DEFAULT_MAX_WORKERS))

    def get_raw_model(self) -> Any:
        return self.program

    # -- inputs -------------------------------------------------------------------------

    def _records(self, model_input: Any) -> tuple[list[dict[str, Any]], bool]:
        """(records, is_single): a dict, a string, a list of either, or a DataFrame."""
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            if len(self.input_names) == 1 and list(model_input.columns) == [0]:  # a string, or a list of them
                model_input = model_input.rename(columns={0: self.input_names[0]})
            rows = [{k: v for k, v in r.items() if not _is_missing(v)} for r in model_input.to_dict(orient="records")]
            # MLflow's schema enforcement turns a single dict into a one-row DataFrame.
            return rows, len(rows) == 1
        if isinstance(model_input, (dict, str)):
            return [self._record(model_input)], True
        if isinstance(model_input, list):
            return [self._record(item) for item in model_input], False
        raise MlflowException.invalid_parameter_value(
            f"Unsupported input {type(model_input).__name__}: pass a dict of {self.input_names}, a list of them, "
            "a DataFrame, or a string for a single-input program."
        )

    def _record(self, item: Any) -> dict[str, Any]:
        if isinstance(item, dict):
            return item
        if isinstance(item, str) and len(self.input_names) == 1:
            return {self.input_names[0]: item}
        raise MlflowException.invalid_parameter_value(
            f"Expected a dict of {self.input_names}" + (" or a string" if len(self.input_names) == 1 else "")
            + f", got {type(item).__name__}."
        )

    def _with_params(self, params: dict[str, Any] | None) -> Any:
        """The program, or for per-call ``params`` a copy whose LMs are ``lm.copy(**params)``."""
        settings = {k: v for k, v in (params or {}).items() if not _is_missing(v)}
        if not settings:
            return self.program
        memo: dict[int, Any] = {}
        for _, predictor in self.program.named_predictors():
            if predictor.lm is not None and id(predictor.lm) not in memo:
                memo[id(predictor.lm)] = predictor.lm.copy(**settings)
        return copy.deepcopy(self.program, memo)

    # -- predict ------------------------------------------------------------------------

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        program = self._with_params(params)
        if self.task == CHAT_TASK:
            return self._chat(program, model_input)
        records, single = self._records(model_input)
        if single:
            return jsonable(program(**records[0]))
        workers = max(1, min(self.max_workers, len(records)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dspy-otel-predict") as pool:
            return list(pool.map(lambda r: jsonable(program(**r)), records))

    def _content_field(self) -> str | None:
        return self.output_names[-1] if self.output_names else None

    def _model_name(self, program: Any) -> str:
        lm = next((p.lm for _, p in program.named_predictors() if p.lm is not None), None)
        return getattr(lm, "model", None) or type(program).__name__

    def _chat(self, program: Any, model_input: Any) -> dict[str, Any]:
        from dspy.utils.usage_tracker import track_usage

        messages = _chat.messages_of(model_input)
        with track_usage() as tracker:
            result = jsonable(program(**_chat.program_inputs(self.inputs, self._content_field(), messages)))
        results = result if isinstance(result, list) else [result]
        return _chat.completion(results, self._model_name(program), _chat.total_usage(tracker.get_total_tokens()))

    # -- streaming ----------------------------------------------------------------------

    def _stream(self, program: Any, record: dict[str, Any]) -> Iterator[Any]:
        """Raw ``dspy.streamify`` items, listening to the string output fields of their last predictor."""
        import dspy
        from dspy.streaming import StreamListener

        listeners = []
        for name in self.output_names:
            owners = [(n, p) for n, p in program.named_predictors() if p.signature.output_fields.get(name)]
            if owners and owners[-1][1].signature.output_fields[name].annotation is str:
                listeners.append(StreamListener(signature_field_name=name, predict=owners[-1][1], predict_name=owners[-1][0]))
        streamed = dspy.streamify(program, stream_listeners=listeners, async_streaming=False)
        with dspy.context(track_usage=True):
            yield from streamed(**record)

    def predict_stream(self, model_input: Any, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Output-field chunks as they arrive, ending with the final prediction (chat: completion chunks)."""
        import dspy

        program = self._with_params(params)
        if self.task == CHAT_TASK:
            yield from self._chat_stream(program, model_input)
            return
        records, single = self._records(model_input)
        if not single:
            raise MlflowException.invalid_parameter_value("predict_stream takes one input, not a batch.")
        for item in self._stream(program, records[0]):
            if isinstance(item, dspy.streaming.StreamResponse):
                yield {"type": "chunk", "predictor": item.predict_name, "field": item.signature_field_name,
                       "chunk": item.chunk, "is_last_chunk": item.is_last_chunk}
            elif isinstance(item, dspy.Prediction):
                yield {"type": "prediction", "outputs": jsonable(item)}
            elif isinstance(item, dspy.streaming.StatusMessage):
                yield {"type": "status", "message": item.message}

    def _chat_stream(self, program: Any, model_input: Any) -> Iterator[dict[str, Any]]:
        import dspy

        messages = _chat.messages_of(model_input)
        record = _chat.program_inputs(self.inputs, self._content_field(), messages)
        completion_id, model = f"chatcmpl-{uuid.uuid4().hex}", self._model_name(program)
        content_field = self._content_field()
        yield _chat.chunk(completion_id, model, {"role": "assistant", "content": ""})
        streamed_any = False
        for item in self._stream(program, record):
            if isinstance(item, dspy.streaming.StreamResponse) and item.signature_field_name == content_field:
                streamed_any = True
                yield _chat.chunk(completion_id, model, {"content": item.chunk})
            elif isinstance(item, dspy.Prediction):
                outputs = jsonable(item)
                if not streamed_any:
                    yield _chat.chunk(completion_id, model, {"content": _chat.content_of(outputs)})
                final = _chat.chunk(completion_id, model, {}, finish_reason="stop")
                final["usage"] = _chat.total_usage(item.get_lm_usage() or {})
                yield final
