"""Delivery limits without a destination: the buffer bound, drop counting and shutdown."""

from __future__ import annotations

import logging
import socket

from dspy_otel.exporters import MlflowSpanExporter

from .conftest import program_trace, recorded_spans


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_buffer_is_bounded_and_drops_are_counted(caplog):
    url = f"http://127.0.0.1:{unused_port()}"
    exporter = MlflowSpanExporter(url, experiment_id="0", max_buffer_spans=8, retry_timeout=60,
                                  shutdown_timeout=0.5)
    caplog.set_level(logging.WARNING, logger="dspy_otel.exporters")

    results = [exporter.export(recorded_spans(program_trace)).name for _ in range(10)]

    assert results == ["SUCCESS"] * 2 + ["FAILURE"] * 8
    assert exporter.pending_spans == 8
    assert exporter.dropped_spans == 8 * 4
    messages = [r.getMessage() for r in caplog.records]
    assert sum("buffer is full" in m for m in messages) == 1

    exporter.shutdown()  # cannot deliver in time: the rest is given up and counted, nothing raised
    assert exporter.dropped_spans == 10 * 4 and exporter.exported_spans == 0
    assert exporter.pending_spans == 0
    assert exporter.export(recorded_spans(program_trace)).name == "FAILURE"
    assert exporter.dropped_spans == 11 * 4
    assert "127.0.0.1" in " ".join(messages)
