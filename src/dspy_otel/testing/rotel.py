"""Start and stop a real ``rotel`` OTLP collector on 127.0.0.1, configured by rotel env files.

rotel (``pip install rotel``) is configured by ``ROTEL_*`` environment variables; the pipelines in
``collector-config/rotel/*.env`` are such files, with ``${VAR}`` placeholders. :class:`RotelCollector`
loads one or more of them (later files override earlier ones, like ``otelcol --config a --config b``),
fills the placeholders, moves the receivers to free local ports and runs ``rotel-agent start`` in the
foreground as a child process, so it can be stopped and restarted by the test that owns it.
"""

from __future__ import annotations

import os
import shutil
import signal
import string
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from dspy_otel.testing.net import free_port, wait_for_port

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


def rotel_binary() -> str | None:
    """Path of the ``rotel-agent`` executable (``$ROTEL_AGENT``, the rotel wheel, or ``PATH``), if any."""
    explicit = os.environ.get("ROTEL_AGENT")
    if explicit:
        return explicit
    try:
        from rotel.agent import agent
    except ImportError:
        agent = None
    if agent is not None and Path(agent.agent_path).exists():
        return str(agent.agent_path)
    return shutil.which("rotel-agent") or shutil.which("rotel")


def load_env_file(path: str | Path, variables: Mapping[str, str]) -> dict[str, str]:
    """``KEY=VALUE`` lines of a rotel env file, ``${VAR}`` filled from ``variables`` (missing ones raise)."""
    env: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().startswith("ROTEL_"):
            raise ValueError(f"{path}:{number}: expected ROTEL_NAME=value, got {raw!r}")
        try:
            env[key.strip()] = string.Template(value.strip()).substitute(variables)
        except KeyError as missing:
            raise ValueError(f"{path}:{number}: no value for ${{{missing.args[0]}}}") from None
    return env


class RotelCollector:
    """A rotel collector child process whose OTLP receivers listen on free 127.0.0.1 ports.

    ``env_files`` are rotel env files (applied in order), ``variables`` fill their ``${VAR}``
    placeholders (on top of ``os.environ``), ``overrides`` are final ``ROTEL_*`` settings.
    Use :meth:`start` / :meth:`stop` (again and again: the ports stay), or the context manager.
    """

    def __init__(
        self,
        env_files: Iterable[str | Path] = (),
        variables: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        binary = rotel_binary()
        if binary is None:
            raise FileNotFoundError("rotel-agent not found: pip install rotel (or set ROTEL_AGENT)")
        self.binary = binary
        self.cwd = Path(cwd) if cwd else Path.cwd()
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="rotel-"))
        self.log_path = self._dir / "rotel.log"
        substitutions = {**os.environ, **(variables or {})}
        settings: dict[str, str] = {}
        for path in env_files:
            settings.update(load_env_file(path, substitutions))
        settings.update(overrides or {})
        settings.update({
            "ROTEL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "ROTEL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "ROTEL_PID_FILE": str(self._dir / "rotel.pid"),
            "ROTEL_LOG_FILE": str(self._dir / "rotel-agent.log"),
            "ROTEL_LOG_FORMAT": "json",
        })
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def http_endpoint(self) -> str:
        """Base URL of the OTLP/HTTP receiver (the SDK's ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def traces_url(self) -> str:
        return f"{self.http_endpoint}/v1/traces"

    def start(self, timeout: float = READY_TIMEOUT_S) -> RotelCollector:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
        env.update(self.settings)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "start"], env=env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(self.http_port, timeout, self._process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"rotel did not start: {exc}\n{self.log()}") from exc
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (rotel flushes what it holds, then exits); SIGKILL after ``timeout``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RotelCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
