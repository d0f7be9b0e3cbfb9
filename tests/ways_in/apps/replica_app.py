"""One app replica of the scale test: ``replica_app.py <otlp-endpoint> <runs>`` traces ``runs`` program runs."""

import json
import sys
import time

import program

import dspy_otel

session = dspy_otel.autolog(otlp_endpoint=sys.argv[1], silent=True)
program.configure_from_env()
runs = int(sys.argv[2])
started = time.perf_counter()
for _ in range(runs):
    program.run()
delivered = session.flush()
print(json.dumps({"traces": runs * program.TRACES_PER_RUN, "exported_spans": session.exported_spans,
                  "dropped_spans": session.dropped_spans, "flushed": delivered,
                  "seconds": time.perf_counter() - started}))
