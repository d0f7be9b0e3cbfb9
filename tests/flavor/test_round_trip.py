"""Save in this process, load in a fresh one (credentials only from env, pickle disabled): same prompts, same answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy
import pytest

import flavor_programs as fp
from dspy_otel.flavor import save_model

from ..conftest import API_KEY
from .conftest import HEADER_SECRET, MODEL_CODE, PROGRAMS, load_in_fresh_process, loader_env, stub_lm

INPUTS = [{"question": "What is DSPy?"}, {"question": "Why trace programs?"}]
TRAINSET = [dspy.Example(question=q, answer=f"answer for: {q}").with_inputs("question")
            for q in ("What is a span?", "What is a trace?", "What is OTLP?")]


def _compiled(lm: Any) -> dspy.Module:
    optimizer = dspy.BootstrapFewShot(metric=lambda example, pred, trace=None: True,
                                      max_bootstrapped_demos=2, max_labeled_demos=1)
    with dspy.context(lm=lm):
        program = optimizer.compile(fp.SummarizeThenAnswer(), trainset=TRAINSET)
    program.set_lm(lm)
    return program


def _cases(lm: Any) -> dict[str, tuple[Any, dict[str, Any], dict[str, Any]]]:
    """name -> (program or code path, save_model kwargs, dspy.context used to save and run it)."""
    predict, cot = dspy.Predict("question -> answer"), dspy.ChainOfThought("question -> answer: int")
    react = dspy.ReAct("question -> answer", tools=[fp.lookup, fp.word_count], max_iters=4)
    multi = fp.SummarizeThenAnswer(style="terse")
    json_predict = dspy.Predict("question -> answer, confidence: float")
    for program in (predict, cot, react, multi, json_predict):
        program.set_lm(lm)
    code_paths = {"code_paths": [str(PROGRAMS)]}
    return {
        "predict": (predict, {}, {}),
        "chain_of_thought": (cot, {}, {}),
        "react": (react, code_paths, {}),
        "multi_module": (multi, {**code_paths, "model_config": {"style": "terse"}}, {}),
        "bootstrap_compiled": (_compiled(lm), code_paths, {}),
        "json_adapter": (json_predict, {}, {"adapter": dspy.JSONAdapter()}),
        "from_code": (str(MODEL_CODE), {}, {}),
    }


@pytest.fixture(scope="module")
def round_trip(openai_stub: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Save every case, answer INPUTS here, then load all of them in one fresh process."""
    root = tmp_path_factory.mktemp("round_trip")
    lm = stub_lm(openai_stub.base_url)
    expected: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as env:  # models from code read these while building the program
        env.setenv("OPENAI_API_KEY", API_KEY)
        env.setenv("OPENAI_API_BASE", openai_stub.base_url)
        for name, (program, kwargs, context) in _cases(lm).items():
            with dspy.context(**context):
                save_model(program, root / name, **kwargs)
                if isinstance(program, str):
                    from mlflow.models.utils import _load_model_code_path

                    program = _load_model_code_path(program, None)
                start = len(openai_stub.chat_requests())
                answers = [program(**i).toDict() for i in INPUTS]
            prompts = [r["body"]["messages"] for r in openai_stub.chat_requests()[start:]]
            demos = {n: len(p.demos) for n, p in program.named_predictors()}
            expected[name] = {"answers": answers, "prompts": prompts, "demos": demos}
    start = len(openai_stub.chat_requests())
    jobs = {name: {"uri": str(root / name), "inputs": INPUTS} for name in expected}
    loaded = load_in_fresh_process(jobs, loader_env(openai_stub.base_url, API_KEY), cwd=root)
    requests = openai_stub.chat_requests()[start:]
    offset = 0
    for name, exp in expected.items():  # the fresh process ran the cases in this order
        count = len(exp["prompts"])
        loaded.setdefault(name, {})["requests"] = requests[offset:offset + count]
        offset += count
    return {"expected": expected, "loaded": loaded, "root": root}


CASES = ["predict", "chain_of_thought", "react", "multi_module", "bootstrap_compiled", "json_adapter", "from_code"]


@pytest.mark.parametrize("name", CASES)
def test_fresh_process_gives_identical_answers_and_prompts(round_trip: dict[str, Any], name: str) -> None:
    expected, loaded = round_trip["expected"][name], round_trip["loaded"][name]
    assert "error" not in loaded, loaded.get("error")
    assert loaded["answers"] == expected["answers"]
    assert loaded["demos"] == expected["demos"]
    assert [r["body"]["messages"] for r in loaded["requests"]] == expected["prompts"]


@pytest.mark.parametrize("name", CASES)
def test_credentials_reached_the_server_only_from_the_environment(round_trip: dict[str, Any], name: str) -> None:
    requests = round_trip["loaded"][name]["requests"]
    assert requests
    for request in requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["authorization"] == f"Bearer {API_KEY}"
        if name != "from_code":  # the code file builds its LM without the extra headers
            assert headers["x-api-key"] == HEADER_SECRET
            assert headers["x-team"] == "flavor-tests"


def test_compiled_demos_are_in_the_saved_state(round_trip: dict[str, Any]) -> None:
    assert sum(round_trip["expected"]["bootstrap_compiled"]["demos"].values()) > 0
    state = (Path(round_trip["root"]) / "bootstrap_compiled" / "data" / "state.json").read_text()
    assert "What is a span?" in state or "What is a trace?" in state


def test_loading_leaves_global_dspy_settings_alone(round_trip: dict[str, Any]) -> None:
    assert round_trip["loaded"]["global_settings"] == {"lm": "None", "adapter": "None"}


def test_json_adapter_was_restored(round_trip: dict[str, Any]) -> None:
    prompts = round_trip["loaded"]["json_adapter"]["requests"]
    assert all("JSON" in str(r["body"]["messages"]) for r in prompts)
