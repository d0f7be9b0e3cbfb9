"""benchmarks/overhead.py runs end to end with a tiny workload (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
OURS = ("ours-content-on", "ours-content-off", "ours-always-off", "ours-suppressed", "floor")


def row(output: str, workload: str, variant: str) -> list[str] | None:
    """The table row of ``variant`` in ``workload``'s table, split into columns, or None."""
    table = output.split(f"== {workload}:", 1)[1].split("\n==", 1)[0]
    match = re.search(rf"^{re.escape(variant)} +(.*)$", table, re.M)
    return match.group(1).split() if match else None


def test_overhead_benchmark_prints_every_variant() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _variants import VARIANTS
    finally:
        sys.path.remove(str(BENCHMARKS))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "overhead.py"), "--rounds", "1", "--calls", "5", "--warmup", "2"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    for variant in VARIANTS:  # a table row, or a line saying why a peer could not be measured
        assert re.search(rf"^(  )?{re.escape(variant)}(:| )", out, re.M), f"no line for {variant}:\n{out}"
    assert "FAILED" not in "".join(line for line in out.splitlines() if line.strip().startswith(OURS))
    for workload in ("predict", "pipeline"):
        ours = {variant: row(out, workload, variant) for variant in OURS}
        assert all(ours.values()), f"missing rows for ours in {workload}:\n{out}"
        # spans per call: content on/off trace everything, the floor copies the count, off/suppressed make none
        spans = {variant: columns[0] for variant, columns in ours.items()}  # type: ignore[index]
        assert int(spans["ours-content-on"]) >= 3  # at least predictor, adapter and LM
        assert spans["ours-content-off"] == spans["floor"] == spans["ours-content-on"]
        assert spans["ours-always-off"] == spans["ours-suppressed"] == "0"
    assert int(row(out, "pipeline", "ours-content-on")[0]) > int(row(out, "predict", "ours-content-on")[0])  # type: ignore[index]
    assert "targets (CPU):" in out and "ratios (ours-content-on" in out
