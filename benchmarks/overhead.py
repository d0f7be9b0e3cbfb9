"""Per-call overhead of tracing a DSPy ``Predict`` and a two-predictor pipeline, ours against the peers.

Every variant (no tracing, ``mlflow.dspy.autolog()``, openinference, OpenTelemetry's genai-dspy,
dspy-otel with content on/off, with an ALWAYS_OFF sampler, under ``suppress_instrumentation``, and
the bare-span floor) runs in its own long-lived worker process, because the peers patch DSPy
globally. Blocks of calls are interleaved ABAB with the baseline over several rounds so machine
noise hits all variants alike; each round's overhead is the variant's time per call minus the
baseline's in the same round, and the tables show the median over rounds. The primary figure is
calling-thread CPU time (``time.thread_time_ns``), which background exporters do not inflate;
wall time is shown too. The issue's targets are checked and printed, never asserted.

    python benchmarks/overhead.py                       # a few minutes
    python benchmarks/overhead.py --rounds 15 --calls 400
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from _variants import VARIANTS

HERE = Path(__file__).resolve().parent
OURS = "ours-content-on"
PEERS = ("mlflow", "openinference", "otel-genai")
WORKLOADS = ("predict", "pipeline")
ROW = "{:<18}{:>6}{:>10}{:>20}{:>9}{:>10}{:>10}  {}"


class WorkerError(RuntimeError):
    pass


class Worker:
    """A variant's process; requests and replies are JSON lines, its stderr goes to a log file."""

    def __init__(self, name: str, processor: str, workdir: str) -> None:
        self.name = name
        self.error: str | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"overhead-{name}-", suffix=".log", delete=False)
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_worker.py"), name, processor],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=workdir, env=env,
        )

    def receive(self, timeout: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else ""
        if not line:
            raise WorkerError(f"no reply within {timeout:.0f}s (exit code {self.process.poll()}); log: {self.log.name}")
        message = json.loads(line)
        if "error" in message:
            raise WorkerError(f"{message['error']} (log: {self.log.name})")
        return message

    def request(self, timeout: float, **command: Any) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(command) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerError(f"worker gone: {error} (log: {self.log.name})") from error
        return self.receive(timeout)

    def fail(self, error: Exception) -> None:
        self.error = str(error)
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.request(5, cmd="quit")
            except WorkerError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        if self.error is None:  # a failed worker's log stays, for the path printed with its error
            Path(self.log.name).unlink(missing_ok=True)


@dataclass
class Samples:
    """Per-round overheads (µs per call, variant minus the same round's baseline)."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    drain: list[float] = field(default_factory=list)  # draining background export after the block (not a difference)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def start_workers(names: list[str], processor: str, timeout: float, workdir: str) -> dict[str, Worker]:
    workers = {name: Worker(name, processor, workdir) for name in names}  # start in parallel; nothing is timed yet
    for worker in workers.values():
        try:
            worker.receive(timeout)
        except WorkerError as error:
            worker.fail(error)
    return workers


def alive(workers: dict[str, Worker]) -> list[Worker]:
    return [w for w in workers.values() if w.error is None]


def measure(args: argparse.Namespace, workers: dict[str, Worker], spans: dict[str, dict[str, int | None]]) -> tuple[
        dict[str, dict[str, Samples]], dict[str, list[tuple[float, float, float]]]]:
    """Rounds of interleaved (baseline, variant) block pairs; returns overheads and the baseline times."""
    rng = random.Random(args.seed)
    baseline = workers["baseline"]
    overheads = {w: {v: Samples() for v in workers if v != "baseline"} for w in args.workloads}
    baselines: dict[str, list[tuple[float, float, float]]] = {w: [] for w in args.workloads}
    timeout = 120 + args.calls * 0.5

    def block(worker: Worker, workload: str) -> tuple[float, float, float]:
        floor_spans = spans.get(OURS, {}).get(workload) or 0
        reply = worker.request(timeout, cmd="run", workload=workload, calls=args.calls, span_count=floor_spans)
        cpu, wall, drain = (reply[key] / args.calls / 1e3 for key in ("cpu_ns", "wall_ns", "drain_ns"))
        return cpu, wall, drain

    for round_index in range(args.rounds):
        started = time.monotonic()
        for workload in args.workloads:
            others = [w for w in alive(workers) if w is not baseline]
            rng.shuffle(others)
            for position, worker in enumerate(others):
                pair = (baseline, worker) if (round_index + position) % 2 == 0 else (worker, baseline)
                times = {}
                for current in pair:
                    try:
                        times[current.name] = block(current, workload)
                    except WorkerError as error:
                        if current is baseline:
                            raise
                        worker.fail(error)
                        break
                if worker.error is not None:
                    continue
                base, mine = times["baseline"], times[worker.name]
                baselines[workload].append(base)
                overheads[workload][worker.name].cpu.append(mine[0] - base[0])
                overheads[workload][worker.name].wall.append(mine[1] - base[1])
                overheads[workload][worker.name].drain.append(mine[2])
        print(f"round {round_index + 1}/{args.rounds} done in {time.monotonic() - started:.1f}s",
              file=sys.stderr, flush=True)
    return overheads, baselines


def versions() -> str:
    names = ("dspy", "mlflow", "opentelemetry-sdk", "openinference-instrumentation-dspy",
             "opentelemetry-instrumentation-genai-dspy", "dspy-otel")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def ratio(ours: float, other: float) -> str:
    return f"{ours / other:.2f}x" if other > 0 else "n/a"


def report(args: argparse.Namespace, workers: dict[str, Worker], spans: dict[str, dict[str, int | None]],
           overheads: dict[str, dict[str, Samples]], baselines: dict[str, list[tuple[float, float, float]]]) -> None:
    print(f"\nDSPy tracing overhead per call: {args.rounds} rounds x {args.calls} calls per block, "
          f"{args.processor} span processor, Python {sys.version.split()[0]}")
    print(versions())
    print("overhead = variant minus baseline in the same round (µs per call), median over rounds [p25, p75]; "
          "CPU = calling-thread CPU time;\ndrain = wall time per call to finish background export after a block "
          "(done outside the timed region)")
    for name, worker in workers.items():
        if worker.error is not None:
            print(f"  {name}: FAILED - {worker.error}")
    for workload in args.workloads:
        base_cpu = median([b[0] for b in baselines[workload]])
        base_wall = median([b[1] for b in baselines[workload]])
        print(f"\n== {workload}: baseline {base_cpu:.1f} µs CPU, {base_wall:.1f} µs wall per call ==")
        print(ROW.format("variant", "spans", "CPU µs", "[p25, p75]", "% base", "wall µs", "drain µs", "what"))
        print(ROW.format("baseline", "-", "0.0", "", "0.0%", "0.0", "0.0", VARIANTS["baseline"]))
        for name in VARIANTS:
            samples = overheads[workload].get(name)
            if name == "baseline" or samples is None or not samples.cpu:
                continue
            count = spans.get(OURS, {}).get(workload) if name == "floor" else spans.get(name, {}).get(workload)
            q1, q3 = quartiles(samples.cpu)
            cpu = median(samples.cpu)
            print(ROW.format(name, "-" if count is None else count, f"{cpu:.1f}", f"[{q1:.1f}, {q3:.1f}]",
                             f"{100 * cpu / base_cpu:.1f}%", f"{median(samples.wall):.1f}",
                             f"{median(samples.drain):.1f}", VARIANTS[name]))
        print_targets(overheads[workload], base_cpu)


def print_targets(samples: dict[str, Samples], base_cpu: float) -> None:
    cpu = {name: median(s.cpu) for name, s in samples.items() if s.cpu}
    wall = {name: median(s.wall) for name, s in samples.items() if s.wall}
    if OURS not in cpu:
        print(f"targets: {OURS} has no measurements")
        return
    ours = cpu[OURS]
    others = [name for name in (*PEERS, "floor") if name in cpu]
    print(f"ratios ({OURS} overhead / other's): CPU "
          + ", ".join(f"{name} {ratio(ours, cpu[name])}" for name in others)
          + "; wall " + ", ".join(f"{name} {ratio(wall[OURS], wall[name])}" for name in others))
    checks = [("<= 1/10 of mlflow", "mlflow", 0.1), ("<= 1/3 of openinference", "openinference", 1 / 3),
              ("<= 2x the bare-span floor", "floor", 2.0)]
    print("targets (CPU):")
    for label, other, factor in checks:
        if other not in cpu:
            print(f"  {OURS} {label}: not measured ({other} missing)")
            continue
        limit = cpu[other] * factor
        print(f"  {OURS} {label}: {ours:.1f} µs vs limit {limit:.1f} µs -> {'MET' if ours <= limit else 'NOT MET'}")
    for name in ("ours-always-off", "ours-suppressed"):
        if name in cpu:
            share = 100 * cpu[name] / base_cpu
            print(f"  {name} within 5% of uninstrumented: {cpu[name]:+.1f} µs = {share:+.1f}% of baseline -> "
                  f"{'MET' if share <= 5 else 'NOT MET'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=200, help="calls per timed block (default 200)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls per workload first (default 30)")
    parser.add_argument("--processor", choices=("batch", "simple"), default="batch",
                        help="span processor for every OpenTelemetry variant (default batch)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="predict, pipeline or both")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the block order shuffle")
    parser.add_argument("--startup-timeout", type=float, default=300, help="seconds for a worker to get ready")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    if "floor" in names and OURS not in names:
        parser.error(f"the floor needs {OURS} (it makes as many spans as ours)")
    args.variants = ["baseline", *(n for n in VARIANTS if n in names and n != "baseline")]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not set(args.workloads) <= set(WORKLOADS) or not args.workloads:
        parser.error(f"workloads are {', '.join(WORKLOADS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"starting {len(args.variants)} workers ...", file=sys.stderr, flush=True)
    workdir = tempfile.TemporaryDirectory(prefix="dspy-otel-overhead-")  # whatever a library writes to its cwd
    workers = start_workers(args.variants, args.processor, args.startup_timeout, workdir.name)
    try:
        if workers["baseline"].error is not None:
            print(f"baseline failed: {workers['baseline'].error}", file=sys.stderr)
            return 1
        spans: dict[str, dict[str, int | None]] = {}
        for worker in alive(workers):
            try:
                spans[worker.name] = worker.request(args.startup_timeout, cmd="warmup", calls=args.warmup)["spans"]
            except WorkerError as error:
                worker.fail(error)
        if "floor" in workers and OURS not in spans:
            workers["floor"].fail(WorkerError(f"{OURS} failed, so the floor has no span count"))
        overheads, baselines = measure(args, workers, spans)
        report(args, workers, spans, overheads, baselines)
    finally:
        for worker in workers.values():
            worker.stop()
        workdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
