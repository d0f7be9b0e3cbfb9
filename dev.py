#!/usr/bin/env python3
"""The project's two commands, on any machine with Python >= 3.10 and pip.

    python dev.py demo    # set up .venv, run examples/quickstart.py (a traced DSPy program)
    python dev.py test    # set up .venv with test dependencies, run the whole test suite

Extra arguments after ``test`` go to pytest (``python dev.py test -k exporter``).
Set ``DSPY_OTEL_VENV`` to use another virtual environment folder.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("DSPY_OTEL_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
# Debian packages the integration tests use: PostgreSQL for the scale path, libpython3.11 for rotel.
SYSTEM_PACKAGES = {"postgresql": "/usr/lib/postgresql/*/bin/initdb", "libpython3.11": "/usr/lib/*/libpython3.11.so.1.0"}


def run(*cmd: str | Path, **kwargs: object) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def ensure_venv(extras: str) -> None:
    """Create the virtual environment and install the package with ``extras``, once per pyproject change."""
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".dspy-otel-{extras}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extras}]")
    stamp.write_text(digest)


def ensure_system_packages() -> None:
    """Install the Debian packages integration tests need, where this user can (CI runs as root)."""
    missing = [name for name, pattern in SYSTEM_PACKAGES.items() if not glob.glob(pattern)]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"note: {', '.join(missing)} not installed and cannot be installed here; "
              "the integration tests that need them will be skipped with that reason", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test"}:
        print(__doc__)
        return 2
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if argv[0] == "demo":
        ensure_venv("all")
        return subprocess.call([str(PYTHON), str(ROOT / "examples" / "quickstart.py"), *argv[1:]], env=env, cwd=ROOT)
    ensure_venv("dev")
    ensure_system_packages()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # pytest exits 5 when no test ran: that is a failure here too.
    return subprocess.call([str(PYTHON), "-m", "pytest", *argv[1:]], env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
