"""MLflow integration: log_model to a sqlite store, models logged by mlflow.dspy, `mlflow models serve/predict`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import mlflow
import pytest
from mlflow.exceptions import MlflowException

from dspy_otel.flavor import load_model, log_model, save_model

from ..conftest import API_KEY
from .conftest import loader_env, stub_lm

HELLO = {"messages": [{"role": "user", "content": "hello from the cli"}]}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("tracking")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("flavor", artifact_location=str(root / "artifacts")))
    yield root
    mlflow.set_tracking_uri(previous)


def test_log_model_returns_model_info_and_never_calls_the_lm(tracking: Path, openai_stub: Any, make_lm: Any,
                                                             env_credentials: None) -> None:
    program = dspy.ChainOfThought("question -> answer")
    program.set_lm(make_lm())
    before = len(openai_stub.chat_requests())
    with mlflow.start_run():
        info = log_model(program, name="qa", input_example={"question": "What is DSPy?"})
    assert len(openai_stub.chat_requests()) == before  # no signature inference or example validation via the LM
    assert set(info.flavors) == {"dspy_otel", "python_function"}
    assert info.flavors["python_function"]["loader_module"] == "dspy_otel.flavor"
    assert info.signature.inputs.to_dict() == [{"type": "string", "required": True}]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == ["reasoning", "answer"]
    assert {p.name for p in info.signature.params} >= {"temperature", "max_tokens"}
    assert info.model_uri.startswith("models:/")
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert json.loads((local / "input_example.json").read_text()) == {"question": "What is DSPy?"}
    assert not [p for p in local.rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]
    assert load_model(info.model_uri)(question="logged").answer == "answer for: logged"
    assert mlflow.pyfunc.load_model(info.model_uri).predict("logged") == {
        "reasoning": "reasoning for: logged", "answer": "answer for: logged"}


def test_an_input_example_that_does_not_fit_is_rejected(tracking: Path, make_lm: Any) -> None:
    program = dspy.Predict("question, context -> answer")
    with pytest.raises(MlflowException, match=r"missing \['context'\], unknown \['query'\]"):
        with mlflow.start_run():
            log_model(program, name="bad", input_example={"question": "q", "query": "x"})


@pytest.fixture
def mlflow_dspy_model(make_lm: Any, tmp_path: Path) -> tuple[Path, dspy.Module]:
    program = dspy.ChainOfThought("question -> answer")
    with dspy.context(lm=make_lm(), adapter=dspy.JSONAdapter()):
        mlflow.dspy.save_model(program, str(tmp_path / "mlflow_dspy"))
    return tmp_path / "mlflow_dspy", program


def test_reads_models_logged_by_mlflow_dspy_without_touching_global_settings(
        mlflow_dspy_model: tuple[Path, dspy.Module], openai_stub: Any, caplog: pytest.LogCaptureFixture) -> None:
    path, _ = mlflow_dspy_model
    with caplog.at_level("WARNING"):
        program = load_model(str(path))
    assert "logged by mlflow.dspy" in caplog.text
    assert dspy.settings.lm is None and dspy.settings.adapter is None
    assert program(question="legacy").answer == "answer for: legacy"
    assert "JSON" in str(openai_stub.chat_requests()[-1]["body"]["messages"])  # its saved adapter, bound
    assert dspy.settings.lm is None


def test_mlflow_dspy_pickles_are_refused_when_code_execution_is_disabled(
        mlflow_dspy_model: tuple[Path, dspy.Module], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", "false")
    with pytest.raises(MlflowException, match="logged by mlflow.dspy.*code execution is disabled"):
        load_model(str(mlflow_dspy_model[0]))


def test_other_flavors_are_refused_clearly(tmp_path: Path) -> None:
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=lambda x: x, input_example=["a"])
    with pytest.raises(MlflowException, match="is not a DSPy model"):
        load_model(str(tmp_path / "m"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _mlflow_cli() -> str:
    return str(Path(sys.executable).with_name("mlflow"))


def _cli_env(stub_url: str) -> dict[str, str]:
    """The loader env, with this interpreter's bin/ first on PATH (the scoring server runs `uvicorn`)."""
    env = loader_env(stub_url, API_KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def served(openai_stub: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow models serve --env-manager local` of a ChainOfThought model, credentials only from env."""
    root = tmp_path_factory.mktemp("serve")
    program = dspy.ChainOfThought("question -> answer")
    program.set_lm(stub_lm(openai_stub.base_url))
    save_model(program, root / "model")
    port = _free_port()
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [_mlflow_cli(), "models", "serve", "-m", str(root / "model"), "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=_cli_env(openai_stub.base_url), cwd=root, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow models serve did not come up:\n{(root / 'serve.log').read_text()[-4000:]}")
                time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (uvicorn and its worker), which this fixture started."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_serve_answers_a_batch_over_http(served: str) -> None:
    response = _post(f"{served}/invocations", {"dataframe_records": [{"question": "one"}, {"question": "two"}]})
    assert response == {"predictions": [
        {"reasoning": "reasoning for: one", "answer": "answer for: one"},
        {"reasoning": "reasoning for: two", "answer": "answer for: two"},
    ]}


def test_serve_passes_params_to_the_lm(served: str, openai_stub: Any) -> None:
    response = _post(f"{served}/invocations", {"inputs": ["with params"], "params": {"temperature": 0.25}})
    assert response["predictions"]["answer"] == "answer for: with params"
    body = openai_stub.chat_requests()[-1]["body"]
    assert body["temperature"] == 0.25


def test_models_predict_cli_answers_a_chat_request(openai_stub: Any, tmp_path: Path) -> None:
    program = dspy.Predict("question -> answer")
    program.set_lm(stub_lm(openai_stub.base_url))
    save_model(program, tmp_path / "chat", task="llm/v1/chat")
    (tmp_path / "input.json").write_text(json.dumps(HELLO))
    proc = subprocess.run(
        [_mlflow_cli(), "models", "predict", "-m", str(tmp_path / "chat"), "-i", str(tmp_path / "input.json"),
         "-t", "json", "-o", str(tmp_path / "out.json"), "--env-manager", "local"],
        env=_cli_env(openai_stub.base_url), cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    output = json.loads((tmp_path / "out.json").read_text())
    output = output.get("predictions", output)
    assert output["object"] == "chat.completion"
    assert output["choices"][0]["message"] == {"role": "assistant", "content": "answer for: hello from the cli"}
