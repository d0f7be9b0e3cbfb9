"""The scale path: app replicas → rotel → ``mlflow server`` on sqlite and on PostgreSQL, same pipeline.

Only the tracking server's ``--backend-store-uri`` differs between the two. Sizes come from
``SCALE_REPLICAS`` / ``SCALE_RUNS`` (small by default); run with ``-s`` to see the throughput line
that the README's "Running at scale" numbers come from (printed, never asserted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dspy_otel.testing.mlflow_server import MlflowServer
from dspy_otel.testing.postgres import PostgresCluster, postgres_bin_dir
from dspy_otel.testing.rotel import RotelCollector

pytestmark = pytest.mark.integration

APPS = Path(__file__).resolve().parent / "apps"
CONFIG = Path(__file__).resolve().parents[2] / "collector-config" / "rotel" / "mlflow.env"
REPLICAS = int(os.environ.get("SCALE_REPLICAS", "3"))
RUNS = int(os.environ.get("SCALE_RUNS", "3"))


@pytest.fixture(scope="module")
def postgres_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed; dev.py installs Debian's postgresql")
    with PostgresCluster() as cluster:
        server = MlflowServer(tmp_path_factory.mktemp("mlflow-on-postgres"))
        server.backend_store_uri = cluster.uri  # the only difference from the sqlite deployment
        with server:
            yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking_server(request: pytest.FixtureRequest) -> MlflowServer:
    name = "mlflow_server" if request.param == "sqlite" else "postgres_mlflow_server"
    return request.getfixturevalue(name)


def test_replicas_through_rotel_into_mlflow(tracking_server: MlflowServer, require_rotel: None,
                                            app_env: dict[str, str], wait_for_traces: Callable[..., list]) -> None:
    assert tracking_server.backend_store_uri.split(":")[0] in {"sqlite", "postgresql+psycopg2"}
    experiment_id = MlflowClient(tracking_server.url).create_experiment(f"scale-{time.time_ns()}")
    variables = {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_EXPERIMENT_ID": experiment_id}
    with RotelCollector([CONFIG], variables) as rotel:
        started = time.perf_counter()
        replicas = [subprocess.Popen([sys.executable, str(APPS / "replica_app.py"), rotel.http_endpoint, str(RUNS)],
                                     env=app_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(REPLICAS)]
        reports = []
        for replica in replicas:
            out, err = replica.communicate(timeout=600)
            assert replica.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        replicas_done = time.perf_counter()
        expected = sum(r["traces"] for r in reports)
        traces = wait_for_traces(tracking_server.url, experiment_id, expected, timeout=300, min_spans=4)
        elapsed = time.perf_counter() - started

    assert all(r["flushed"] and r["dropped_spans"] == 0 for r in reports), reports
    assert len(traces) == expected
    stored_spans = sum(len(t.data.spans) for t in traces)
    assert stored_spans == sum(r["exported_spans"] for r in reports)
    roots = [s.span_type for t in traces for s in t.data.spans if s.parent_id is None]
    assert roots.count("AGENT") == expected // 3 and roots.count("CHAIN") == 2 * expected // 3
    assert all(t.info.state.value == "OK" for t in traces)
    store = tracking_server.backend_store_uri.split(":")[0]
    print(f"\nscale[{store}]: {REPLICAS} replicas x {RUNS} runs = {expected} traces / {stored_spans} spans "
          f"stored in {elapsed:.1f}s ({expected / elapsed:.1f} traces/s, {stored_spans / elapsed:.0f} spans/s); "
          f"slowest replica ran {max(r['seconds'] for r in reports):.1f}s, last trace stored "
          f"{elapsed - (replicas_done - started):.1f}s after the replicas exited")
