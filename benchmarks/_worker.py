"""One benchmark variant in its own process, driven by ``overhead.py`` over a JSON-lines protocol.

``python _worker.py VARIANT PROCESSOR``; then, one JSON object per line on stdin:

- ``{"cmd": "warmup", "calls": n}`` → ``{"spans": {workload: spans per call or null}}``
- ``{"cmd": "run", "workload": w, "calls": n, "span_count": k}`` → ``{"cpu_ns": …, "wall_ns": …, "drain_ns": …}``
  (calling-thread CPU time and wall time of ``n`` calls; then the time to drain background export,
  which is done outside the timed region so it cannot spill into another variant's block)
- ``{"cmd": "quit"}``

Any failure is answered with ``{"error": "..."}``. Library output goes to stderr.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def serve(variant_name: str, processor: str, protocol: Any) -> None:
    def reply(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        from _variants import install
        from _workload import workloads

        calls = workloads()
        variant = install(variant_name, processor)
    except Exception as error:  # noqa: BLE001 - a peer that cannot be installed is reported, not fatal
        reply({"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})
        return
    reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["cmd"] == "quit":
                return
            if request["cmd"] == "warmup":
                reply({"spans": warmup(variant, calls, request["calls"])})
            elif request["cmd"] == "run":
                reply(timed_block(variant, calls[request["workload"]], request["calls"], request["span_count"]))
        except Exception as error:  # noqa: BLE001
            reply({"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})


def warmup(variant: Any, calls: dict[str, Any], count: int) -> dict[str, int | None]:
    spans: dict[str, int | None] = {}
    for name, call in calls.items():
        with variant.block():
            for _ in range(count):
                result = call()
        if getattr(result, "answer", None) != "Paris":
            raise RuntimeError(f"{name} returned {result!r} under this variant")
        variant.flush()
        spans[name] = variant.count_spans(call)
    return spans


def timed_block(variant: Any, call: Any, count: int, span_count: int) -> dict[str, int]:
    timed = variant.prepare(call, span_count)
    gc.collect()
    with variant.block():
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(count):
            timed()
        cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    drain = time.perf_counter_ns()
    variant.flush()
    return {"cpu_ns": cpu, "wall_ns": wall, "drain_ns": time.perf_counter_ns() - drain}


def main() -> None:
    from _variants import stdout_to_stderr

    with stdout_to_stderr() as protocol:
        serve(sys.argv[1], sys.argv[2], protocol)


if __name__ == "__main__":
    main()
