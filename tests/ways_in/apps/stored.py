"""Read back what an app stored: each trace as its span names, root first, in start order."""

from __future__ import annotations

from mlflow import MlflowClient


def span_names_per_trace(tracking_uri: str, experiment_id: str) -> list[list[str]]:
    traces = MlflowClient(tracking_uri).search_traces(locations=[experiment_id])
    return [[s.name for s in sorted(t.data.spans, key=lambda s: (s.parent_id is not None, s.start_time_ns))]
            for t in traces]
