"""``examples/quickstart.py`` (what ``python dev.py demo`` runs), in a subprocess from an empty directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

DEMO = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_demo_traces_into_a_local_store_and_prints_the_tree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "MLFLOW_", "DSPY_OTEL_", "LITELLM_"))}  # the demo sets what it needs
    done = subprocess.run([sys.executable, str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout

    assert "LOCAL STAND-IN" in out  # no model configured: clearly labelled
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert f"2 traces recorded in {store}" in out
    assert f"mlflow ui --backend-store-uri {store}" in out
    for marker in ("└─ ChainOfThought [CHAIN]", "└─ invoke_agent ReAct [AGENT]", "[CHAT_MODEL]",
                   "execute_tool get_weather [TOOL]"):
        assert marker in out, marker
    totals = [int(n) for n in re.findall(r"tokens in/out/total \d+/\d+/(\d+)", out)]
    assert len(totals) == 2 and all(total > 0 for total in totals)
    assert re.search(r"\[CHAT_MODEL\] [\d.]+ ms  tokens \d+→\d+", out)

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("dspy-otel-quickstart")
    assert len(client.search_traces(locations=[experiment.experiment_id])) == 2
