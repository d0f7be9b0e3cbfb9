"""A throwaway PostgreSQL cluster on 127.0.0.1 (``initdb`` in a temporary directory, ``pg_ctl`` on a free port).

PostgreSQL refuses to run as root, so when the caller is root the cluster belongs to the
``postgres`` system user (Debian's package creates it) and every command runs through ``runuser``.
Authentication is ``trust`` on the loopback interface only: a test fixture, not a deployment.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from dspy_otel.testing.net import free_port

PG_TIMEOUT_S = 60


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$PG_BIN``, Debian's newest, or ``PATH``."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


class PostgresCluster:
    """Start with :meth:`start` (or the context manager); :attr:`uri` is a SQLAlchemy URL for psycopg2."""

    def __init__(self, database: str = "mlflow", run_as: str = "postgres") -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; set PG_BIN")
        self.bin_dir = bin_dir
        self.database = database
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="dspy-otel-pg-"))
        self.data_dir = self._root / "data"
        self.log_path = self._root / "postgres.log"
        self._run_as = run_as if os.geteuid() == 0 else None
        self.user = self._run_as or pwd.getpwuid(os.geteuid()).pw_name
        self._started = False

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=PG_TIMEOUT_S + 30)
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr or result.stdout}\n{log}")

    def start(self) -> PostgresCluster:
        if self._run_as:
            user = pwd.getpwnam(self._run_as)
            os.chown(self._root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", str(PG_TIMEOUT_S), "start")
        self._started = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(PG_TIMEOUT_S), "stop")

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
