"""One program call, one trace: across ParallelExecutor threads, Evaluate, asyncify and streamify."""

from __future__ import annotations

import asyncio

import dspy

from dspy_otel.instrumentation import attributes as attr


class FanOut(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict("question -> answer")

    def forward(self, questions: list[str]) -> list[dspy.Prediction]:
        parallel = dspy.Parallel(num_threads=8)
        return parallel([(self.answer, {"question": q}) for q in questions])


def test_parallel_with_8_threads_is_one_trace(spans, lm):
    results = FanOut()(questions=[f"q{i}" for i in range(16)])

    assert [r.answer for r in results] == [f"answer for: q{i}" for i in range(16)]
    assert len(spans.trace_ids()) == 1
    root = spans.roots()[0]
    assert root.name == "FanOut"
    predictors = spans.named("Predict(")
    assert len(predictors) == 16
    assert all(spans.parent(p) is not None and spans.parent(p).name == "FanOut" for p in predictors)
    assert all(p.attributes[attr.DSPY_PREDICTOR_PATH] == "answer" for p in predictors)


def test_module_batch_stays_in_caller_trace(spans, lm, tracer_provider):
    tracer = tracer_provider.get_tracer("test")
    program = dspy.Predict("question -> answer")
    with tracer.start_as_current_span("request"):
        program.batch([dspy.Example(question=f"b{i}").with_inputs("question") for i in range(6)], num_threads=3)

    assert len(spans.trace_ids()) == 1
    request = spans.one("request")
    assert {spans.parent(p).name for p in spans.named("Predict(")} == {"request"}
    assert len(spans.children(request)) == 6


def test_evaluate_with_4_threads_is_parent_of_all_it_runs(spans, lm):
    devset = [dspy.Example(question=f"e{i}", answer=f"answer for: e{i}").with_inputs("question") for i in range(8)]
    evaluate = dspy.Evaluate(devset=devset, num_threads=4, display_progress=False)
    result = evaluate(dspy.Predict("question -> answer"), metric=lambda ex, pred, trace=None: ex.answer == pred.answer)

    assert result.score == 100.0
    assert len(spans.trace_ids()) == 1
    root = spans.roots()[0]
    assert root.name == "Evaluate"
    assert root.attributes[attr.MLFLOW_SPAN_TYPE] == "EVALUATOR"
    assert root.attributes[attr.DSPY_EVALUATE_NUM_EXAMPLES] == 8
    assert root.attributes[attr.DSPY_EVALUATE_NUM_THREADS] == 4
    assert root.attributes[attr.DSPY_EVALUATE_SCORE] == 100.0
    assert len(spans.children(root)) == 8


def test_asyncify_runs_inside_the_callers_trace(spans, lm, tracer_provider):
    tracer = tracer_provider.get_tracer("test")
    program = dspy.asyncify(dspy.ChainOfThought("question -> answer"))

    async def main() -> None:
        with tracer.start_as_current_span("handler"):
            await asyncio.gather(program(question="one"), program(question="two"))

    asyncio.run(main())
    assert len(spans.trace_ids()) == 1
    handler = spans.one("handler")
    assert [c.name for c in spans.children(handler)] == ["ChainOfThought", "ChainOfThought"]


def test_streamify_lm_span_ends_with_the_stream_and_carries_usage(spans, lm):
    program = dspy.streamify(
        dspy.Predict("question -> answer"),
        stream_listeners=[dspy.streaming.StreamListener(signature_field_name="answer")],
    )

    async def consume() -> tuple[list[str], dspy.Prediction | None]:
        chunks, final = [], None
        async for item in program(question="stream please"):
            if isinstance(item, dspy.streaming.StreamResponse):
                chunks.append(item.chunk)
            elif isinstance(item, dspy.Prediction):
                final = item
        return chunks, final

    chunks, final = asyncio.run(consume())
    assert final is not None and final.answer == "answer for: stream please"
    assert "".join(chunks).strip() == "answer for: stream please"
    assert len(spans.trace_ids()) == 1
    chat = spans.one("chat ")
    predictor = spans.one("Predict(")
    assert spans.parent(spans.parent(chat)) is predictor or spans.parent(chat) is predictor
    assert chat.attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert chat.end_time <= predictor.end_time
