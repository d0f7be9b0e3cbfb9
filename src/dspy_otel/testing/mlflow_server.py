"""Start, stop and restart a real ``mlflow server`` on 127.0.0.1 with a sqlite backend.

>>> with MlflowServer(tmp_path) as server:      # doctest: +SKIP
...     requests.post(server.url + "/v1/traces", ...)
...     server.stop()                          # an outage: the port refuses connections
...     server.start()                         # back on the same port, same sqlite database

The server runs as a child process in its own session (so stopping it also stops the uvicorn
worker it forks), with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` to keep it small. Its output
goes to ``<workdir>/mlflow-server.log``, whose tail is included in startup errors.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from dspy_otel.testing.net import free_port

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


class MlflowServer:
    """A ``mlflow server`` child process; ``url`` is ``http://127.0.0.1:<port>``.

    Args:
        workdir: directory for the sqlite database (``mlflow.db``), artifacts and the server log.
        port: the port to listen on; a free one when ``None``. It is kept across restarts.
        startup_timeout: seconds to wait for ``/health`` before giving up.
    """

    def __init__(self, workdir: str | os.PathLike[str], port: int | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT_S) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.backend_store_uri = f"sqlite:///{self.workdir / 'mlflow.db'}"
        self.log_path = self.workdir / "mlflow-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> MlflowServer:
        """Start the server (no-op when running) and wait until ``/health`` answers."""
        if self.running:
            return self
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", "--backend-store-uri", self.backend_store_uri,
                   "--default-artifact-root", (self.workdir / "artifacts").as_uri()]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                             cwd=self.workdir, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its worker (SIGTERM, then SIGKILL after a bounded wait)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)
        self._wait_port_closed()

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self._process.returncode}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"mlflow server not healthy after {self.startup_timeout:.0f}s:\n{self._log_tail()}")

    def _wait_port_closed(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                return
            time.sleep(0.1)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
