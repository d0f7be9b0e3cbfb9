"""Flavor test helpers: importable test programs, env for fresh loader processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import API_KEY

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "flavor_programs.py"
MODEL_CODE = HERE / "model_code.py"
HEADER_SECRET = "hdr-SECRET-5f1e2d"
SECRET_HEADERS = {"X-Api-Key": HEADER_SECRET, "X-Team": "flavor-tests"}


def stub_lm(base_url: str, **kwargs: Any) -> Any:
    """A dspy.LM on the stub with an API key and a secret header (neither may reach a saved model)."""
    import dspy

    kwargs.setdefault("extra_headers", SECRET_HEADERS)
    return dspy.LM("openai/stub-model", api_base=base_url, api_key=API_KEY, cache=False, num_retries=0, **kwargs)

# The test process imports program classes as ``flavor_programs`` (fresh processes get them via code_paths).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# Run in a fresh interpreter: load each model, answer each input, report what global dspy.settings hold.
_LOADER = """
import json, sys
import dspy
from dspy_otel.flavor import load_model
jobs = json.loads(sys.stdin.read())
out = {}
for name, job in jobs.items():
    try:
        program = load_model(job["uri"])
        out[name] = {"answers": [program(**i).toDict() for i in job["inputs"]],
                     "demos": {n: len(p.demos) for n, p in program.named_predictors()}}
    except Exception as exc:
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
out["global_settings"] = {"lm": repr(dspy.settings.lm), "adapter": repr(dspy.settings.adapter)}
print("RESULT " + json.dumps(out, default=str))
"""


def loader_env(stub_url: str, api_key: str, **extra: str) -> dict[str, str]:
    """Credentials and endpoint only through the environment; code execution (pickle) disabled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DSPY_OTEL_HEADER_", "PYTHONPATH"))}
    env.update({
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": api_key,
        "OPENAI_API_BASE": stub_url,
        "DSPY_OTEL_HEADER_X_API_KEY": HEADER_SECRET,
        "MLFLOW_ALLOW_MODEL_CODE_EXECUTION": "false",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    })
    env.update(extra)
    return env


def load_in_fresh_process(jobs: dict[str, Any], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """``jobs``: name -> {"uri", "inputs"}; run :data:`_LOADER` in a new interpreter (not seeing tests/flavor)."""
    proc = subprocess.run([sys.executable, "-c", _LOADER], input=json.dumps(jobs), capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"loader failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch, openai_stub: Any) -> None:
    """What a loading process provides: the API key, endpoint and secret header from the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_API_BASE", openai_stub.base_url)
    monkeypatch.setenv("DSPY_OTEL_HEADER_X_API_KEY", HEADER_SECRET)
