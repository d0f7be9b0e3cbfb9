"""Static checks of collector-config/: every otelcol YAML (alone and merged) and every rotel env file."""

from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dspy_otel.instrumentation import attributes as attr
from dspy_otel.testing.rotel import load_env_file, rotel_binary

COLLECTOR_CONFIG = Path(__file__).resolve().parents[2] / "collector-config"
OTELCOL = COLLECTOR_CONFIG / "otelcol"
ROTEL = COLLECTOR_CONFIG / "rotel"
BASE = OTELCOL / "mlflow.yaml"
OVERLAYS = sorted(p for p in OTELCOL.glob("*.yaml") if p != BASE)
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
ENV_REF = re.compile(r"\$\{([^}]*)\}")
CONTENT_ATTRIBUTES = {
    attr.GEN_AI_INPUT_MESSAGES, attr.GEN_AI_OUTPUT_MESSAGES, attr.GEN_AI_SYSTEM_INSTRUCTIONS,
    attr.GEN_AI_TOOL_CALL_ARGUMENTS, attr.GEN_AI_TOOL_CALL_RESULT, attr.MLFLOW_SPAN_INPUTS,
    attr.MLFLOW_SPAN_OUTPUTS, attr.INPUT_VALUE, attr.OUTPUT_VALUE,
}


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """otelcol's merge of repeated ``--config`` files: maps merge recursively, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def effective_configs() -> dict[str, dict[str, Any]]:
    base = load(BASE)
    return {BASE.name: base, **{f"{BASE.name}+{o.name}": merge(base, load(o)) for o in OVERLAYS}}


def component_type(name: str) -> str:
    return name.split("/", 1)[0]


def test_there_are_a_base_and_the_three_overlays() -> None:
    assert {p.name for p in OVERLAYS} == {"redact-content.yaml", "fanout.yaml", "tail-sampling.yaml"}


@pytest.mark.parametrize("path", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_yaml_parses_and_uses_only_known_sections(path: Path) -> None:
    config = load(path)
    assert isinstance(config, dict) and config
    assert set(config) <= {*KINDS, "service"}
    for ref in ENV_REF.findall(path.read_text()):
        assert re.fullmatch(r"env:[A-Z][A-Z0-9_]*(:-[^}]*)?", ref), f"{path.name}: bad reference ${{{ref}}}"


@pytest.mark.parametrize("name", list(effective_configs()))
def test_every_pipeline_names_defined_components(name: str) -> None:
    config = effective_configs()[name]
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces"}
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] and pipeline["exporters"]
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{name}: {kind[:-1]} {component!r} is not defined"
                used[kind].add(component)
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter" and processors[-1] == "batch", processors
    for component in config["service"].get("extensions", []):
        assert component in config["extensions"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(config.get(kind) or {}) == used[kind], f"{name}: defined but unused {kind}"


@pytest.mark.parametrize("name", list(effective_configs()))
def test_otlp_receiver_takes_grpc_and_http(name: str) -> None:
    protocols = effective_configs()[name]["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"grpc", "http"}


@pytest.mark.parametrize("name", list(effective_configs()))
def test_mlflow_exporter_is_otlp_http_with_the_experiment_header(name: str) -> None:
    config = effective_configs()[name]
    mlflow = config["exporters"]["otlphttp/mlflow"]
    assert component_type("otlphttp/mlflow") == "otlphttp"  # MLflow has no gRPC receiver
    assert mlflow["traces_endpoint"] == "${env:MLFLOW_TRACKING_URI}/v1/traces"
    assert mlflow["encoding"] == "proto"
    assert mlflow["headers"]["x-mlflow-experiment-id"] == "${env:MLFLOW_EXPERIMENT_ID}"
    assert "otlphttp/mlflow" in config["service"]["pipelines"]["traces"]["exporters"]


def test_redaction_deletes_every_content_attribute_on_spans_and_events() -> None:
    processor = load(OTELCOL / "redact-content.yaml")["processors"]["transform/redact-content"]
    deleted: dict[str, set[str]] = {}
    for group in processor["trace_statements"]:
        keys = {re.fullmatch(r'delete_key\(attributes, "([^"]+)"\)', s).group(1) for s in group["statements"]}
        deleted[group["context"]] = keys
    assert deleted == {"span": CONTENT_ATTRIBUTES, "spanevent": CONTENT_ATTRIBUTES}


def test_rotel_redaction_processor_deletes_the_same_keys() -> None:
    spec = importlib.util.spec_from_file_location("redact_content", ROTEL / "redact_content.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CONTENT_KEYS == CONTENT_ATTRIBUTES


def test_fanout_sends_to_mlflow_and_two_more_backends() -> None:
    config = effective_configs()[f"{BASE.name}+fanout.yaml"]
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    assert [component_type(e) for e in exporters] == ["otlphttp", "otlphttp", "otlp"]


def test_tail_sampling_keeps_errors_and_slow_traces() -> None:
    policies = load(OTELCOL / "tail-sampling.yaml")["processors"]["tail_sampling"]["policies"]
    by_type = {p["type"]: p for p in policies}
    assert by_type["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert by_type["latency"]["latency"]["threshold_ms"] > 0


ROTEL_FILES = sorted(ROTEL.glob("*.env"))
FILL = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_EXPERIMENT_ID": "7"}


@pytest.fixture(scope="module")
def rotel_options() -> set[str]:
    """Every ``ROTEL_*`` variable the installed rotel-agent documents in ``start --help``."""
    binary = rotel_binary()
    if binary is None:
        pytest.skip("rotel-agent not installed (pip install rotel)")
    helptext = subprocess.run([binary, "start", "--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"\[env: (ROTEL_[A-Z0-9_]+)=", helptext))


@pytest.mark.parametrize("path", ROTEL_FILES, ids=lambda p: p.name)
def test_rotel_env_files_use_only_options_rotel_knows(path: Path, rotel_options: set[str]) -> None:
    settings = load_env_file(path, FILL)
    assert settings
    assert set(settings) <= rotel_options, set(settings) - rotel_options


def test_rotel_mlflow_pipeline_exports_otlp_http_with_the_experiment_header() -> None:
    settings = load_env_file(ROTEL / "mlflow.env", FILL)
    assert settings["ROTEL_EXPORTER"] == "otlp"
    assert settings["ROTEL_OTLP_EXPORTER_PROTOCOL"] == "http"  # rotel's default is gRPC
    assert settings["ROTEL_OTLP_EXPORTER_ENDPOINT"] == "http://mlflow:5000"
    assert settings["ROTEL_OTLP_EXPORTER_CUSTOM_HEADERS"] == "x-mlflow-experiment-id=7"


def test_rotel_env_file_placeholders_must_be_filled() -> None:
    with pytest.raises(ValueError, match="MLFLOW_EXPERIMENT_ID"):
        load_env_file(ROTEL / "mlflow.env", {"MLFLOW_TRACKING_URI": "http://mlflow:5000"})


def test_rotel_redaction_overlay_points_at_the_processor() -> None:
    settings = load_env_file(ROTEL / "redact-content.env", {})
    assert (COLLECTOR_CONFIG.parent / settings["ROTEL_OTLP_WITH_TRACE_PROCESSOR"]).is_file()
