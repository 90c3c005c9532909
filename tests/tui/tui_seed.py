"""A deterministic review workspace for the app's tests and snapshots (Store API, no timing)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.protocol import samples_from_blob, samples_to_blob
from devtrack.benchmarking import BenchOverrides
from devtrack.profiles import load_profile
from devtrack.workspace import Workspace, init_workspace, open_workspace

ACTOR = "alice"
HOST = "lab-1"

PROFILE_TOML = {
    "big-core-1t": """name = "big-core-1t"
description = "One big core, 1 thread"
formats = ["onnx", "tflite"]
[execution]
threads = 1
[measurement]
min_runs = 10
min_time_s = 0.1
max_time_s = 0.3
[budgets]
latency_p90_ms = 2.0
peak_memory_mb = 120.0
model_size_mb = 4.0
min_accuracy = 0.9
max_latency_regression_pct = 5.0
max_accuracy_drop = 0.01
""",
    "ci-host": """name = "ci-host"
description = "CI machine, 2 threads"
formats = ["onnx", "tflite"]
[execution]
threads = 2
[measurement]
min_runs = 10
min_time_s = 0.1
max_time_s = 0.3
[budgets]
model_size_mb = 50.0
max_latency_regression_pct = 5.0
""",
    "iot-256mb": """name = "iot-256mb"
description = "IoT board, TFLite only"
formats = ["tflite"]
[execution]
threads = 1
[measurement]
min_runs = 10
min_time_s = 0.1
max_time_s = 0.3
[budgets]
peak_memory_mb = 128.0
""",
    "phone-4t": """name = "phone-4t"
description = "Phone-class CPU, 4 threads"
formats = ["onnx", "tflite"]
[execution]
threads = 4
[measurement]
min_runs = 10
min_time_s = 0.1
max_time_s = 0.3
[budgets]
latency_p90_ms = 3.0
""",
}


def write_profiles(root: Path) -> None:
    """The workspace's own copies of every shipped profile name, fast and with fixed budgets."""
    directory = root / "device_profiles"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in PROFILE_TOML.items():
        (directory / f"{name}.toml").write_text(text, encoding="utf-8")


def summary(quantization: str = "none", params: int = 180_000, fmt: str = "onnx") -> str:
    return json.dumps({
        "format": fmt,
        "inputs": [{"name": "image", "shape": [1, 3, 224, 224], "dtype": "float32"}],
        "outputs": [{"name": "landmarks", "shape": [1, 63], "dtype": "float32"}],
        "ops": {"Conv": 24, "Relu": 20, "Add": 6, "Gemm": 1},
        "params": params,
        "weight_dtypes": {"int8" if quantization.startswith("int8") else "float32": params},
        "quantization": quantization,
        "opset": "ai.onnx:17" if fmt == "onnx" else "tflite schema 3",
        "producer": "pytorch 2.3",
        "extra": {},
    })


@dataclass(frozen=True)
class Spec:
    """One release to seed and its figures per profile (None: not measured there)."""

    version: str
    status: str
    quantization: str
    size: int
    notes: str
    p50: dict[str, float | None]
    memory: float
    accuracy: float | None
    parent: str | None = None
    fmt: str = "onnx"
    config: dict[str, Any] | None = None
    failed_on: str | None = None


HAND = [
    Spec("1.0.0", "approved", "none", 1_250_000, "First float32 build.",
         {"big-core-1t": 1.50, "ci-host": 0.90}, 96.0, 0.951,
         config={"lr": 0.001, "epochs": 30}),
    Spec("1.1.0", "approved", "int8 dynamic", 420_000,
         "int8 dynamic quantization: smaller and faster.",
         {"big-core-1t": 1.10, "ci-host": 0.70}, 88.0, 0.947, parent="1.0.0",
         config={"lr": 0.001, "epochs": 30, "quant": "dynamic"}),
    Spec("1.2.0", "rejected", "int8 full", 400_000,
         "Full int8 calibration [red]not red[/red] (lost too much accuracy).",
         {"big-core-1t": 1.05, "ci-host": 0.68}, 87.0, 0.902, parent="1.1.0",
         config={"lr": 0.001, "epochs": 30, "quant": "static"}),
    Spec("1.3.0", "candidate", "int8 dynamic", 430_000,
         "Wider backbone: more accurate, but slower.",
         {"big-core-1t": 1.60, "ci-host": 0.71}, 91.0, 0.956, parent="1.1.0",
         config={"lr": 0.0005, "epochs": 40, "quant": "dynamic"}),
    Spec("1.4.0", "candidate", "int8 dynamic", 425_000, "",
         {"big-core-1t": None, "ci-host": None}, 0.0, None, parent="1.3.0",
         failed_on="ci-host"),
]

KWS = [
    Spec("0.9.0", "approved", "none", 80_000, "Keyword spotter baseline.",
         {"ci-host": 0.20}, 60.0, 0.91, fmt="tflite"),
    Spec("1.0.0", "candidate", "fp16", 42_000, "fp16 weights.",
         {"ci-host": 0.21}, 58.0, 0.91, parent="0.9.0", fmt="tflite"),
]

TS = "2024-05-{day:02d}T{hour:02d}:00:00.000Z"


def _ts(day: int, hour: int = 9) -> str:
    return TS.format(day=day, hour=hour)


def _samples(p50: float, seed: int, n: int = 120) -> bytes:
    rng = np.random.default_rng(seed)
    return samples_to_blob(rng.normal(p50, p50 * 0.02, n))


def _run_row(release_id: int, profile: Any, p50: float, memory: float, started: str,
             seed: int) -> dict[str, Any]:
    samples = samples_from_blob(_samples(p50, seed))
    return {
        "release_id": release_id, "profile": profile.name, "profile_hash": profile.hash,
        "profile_snapshot": json.dumps(profile.to_dict(), sort_keys=True),
        "conditions_hash": profile.conditions_hash, "status": "ok",
        "error": None, "started_at": started, "finished_at": started, "actor": ACTOR,
        "host": HOST, "runtime": "onnxruntime", "runtime_version": "1.20.0",
        "import_ms": 120.0, "init_ms": 8.0, "first_ms": p50 * 3, "warmup_ms": p50 * 10,
        "n": int(samples.size), "p50_ms": float(np.median(samples)),
        "p90_ms": float(np.percentile(samples, 90)), "p95_ms": float(np.percentile(samples, 95)),
        "p99_ms": float(np.percentile(samples, 99)), "mean_ms": float(samples.mean()),
        "std_ms": float(samples.std()), "min_ms": float(samples.min()),
        "max_ms": float(samples.max()), "cv": float(samples.std() / samples.mean()),
        "ci_low_ms": float(np.median(samples) * 0.99), "ci_high_ms": float(np.median(samples)
                                                                           * 1.01),
        "stop_reason": "converged", "baseline_rss_mb": memory - 10, "load_peak_mb": memory - 2,
        "load_delta_mb": 8.0, "inference_peak_mb": memory, "peak_rss_mb": memory,
        "memory_method": "VmHWM", "samples": _samples(p50, seed), "inputs": "{}",
        "environment": "{}", "warnings": "[]", "op_profile": None, "details": "{}",
    }


def _seed_model(ws: Workspace, name: str, task: str, specs: list[Spec], day0: int,
                profiles: dict[str, Any], dataset_id: int) -> dict[str, int]:
    store = ws.store
    with store.transaction():
        model_id = store.insert("models", {"name": name, "task": task,
                                           "created_at": _ts(day0)})
    ids: dict[str, int] = {}
    for i, spec in enumerate(specs):
        day = day0 + i
        content = f"{name}@{spec.version}".encode()  # a stand-in file: the app never runs it
        sha = hashlib.sha256(content).hexdigest()
        stored = ws.artifacts.path_for(sha)  # in the store, so approve and deploy accept it
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(content)
        with store.transaction():
            store.insert("artifacts", {"sha256": sha, "format": spec.fmt,
                                       "size_bytes": spec.size, "created_at": _ts(day)})
            rid = store.insert("releases", {
                "model_id": model_id, "version": spec.version, "artifact_sha256": sha,
                "parent_id": ids.get(spec.parent) if spec.parent else None,
                "status": spec.status, "notes": spec.notes, "data_version": "2024-04",
                "data_sha256": hashlib.sha256(b"data").hexdigest(),
                "config": json.dumps(spec.config) if spec.config else None,
                "run_id": f"run-{name}-{i}", "tags": json.dumps({"team": "vision"}),
                "input_specs": "[]", "fills": "[]", "source_name": f"{name}.{spec.fmt}",
                "git_commit": hashlib.sha1(spec.version.encode()).hexdigest(),
                "git_dirty": 1 if spec.version == "1.3.0" else 0, "created_by": ACTOR,
                "host": HOST, "created_at": _ts(day), "devtrack_version": "0.1.0",
                "summary": summary(spec.quantization, fmt=spec.fmt),
            })
            ids[spec.version] = rid
            store.append_event(actor=ACTOR, kind="register", model=name, version=spec.version,
                               payload={"sha256": sha, "format": spec.fmt,
                                        "size_bytes": spec.size, "parent": spec.parent},
                               ts=_ts(day))
        for j, (profile_name, p50) in enumerate(sorted(spec.p50.items())):
            profile = profiles[profile_name]
            started = _ts(day, 10 + j)
            if p50 is None:
                if spec.failed_on != profile_name:
                    continue
                with store.transaction():
                    run = _run_row(rid, profile, 1.0, 0.0, started, seed=i * 10 + j)
                    run.update(status="failed", error="crashed: SIGSEGV (exit -11)",
                               p50_ms=None, p90_ms=None, peak_rss_mb=None, samples=None)
                    run_id = store.insert("runs", run)
                    store.append_event(actor=ACTOR, kind="bench", model=name,
                                       version=spec.version,
                                       payload={"run": run_id, "profile": profile_name,
                                                "status": "failed"}, ts=started)
                continue
            memory = spec.memory + (4.0 if profile_name == "ci-host" else 0.0)
            with store.transaction():
                run_id = store.insert("runs", _run_row(rid, profile, p50, memory, started,
                                                       seed=i * 10 + j))
                if spec.accuracy is not None:
                    store.insert("evaluations", {
                        "run_id": run_id, "dataset_id": dataset_id, "task": task,
                        "metrics": json.dumps({"top1": spec.accuracy}),
                        "accuracy": spec.accuracy, "predictions": None,
                        "reference_release_id": None, "fidelity": None, "nonfinite": 0,
                        "created_at": started})
                store.append_event(actor=ACTOR, kind="bench", model=name, version=spec.version,
                                   payload={"run": run_id, "profile": profile_name,
                                            "status": "ok", "p50_ms": p50}, ts=started)
    return ids


def _deploy(ws: Workspace, model: str, version: str, ids: dict[str, int], profile: str,
            day: int, reason: str, replaced: str | None = None) -> None:
    store = ws.store
    model_id = store.one("SELECT id FROM models WHERE name = ?", (model,))["id"]  # type: ignore[index]
    with store.transaction():
        if replaced is not None:
            store.execute("UPDATE deployments SET ended_at = ? WHERE model_id = ? AND "
                          "profile = ? AND ended_at IS NULL", (_ts(day), model_id, profile))
        store.insert("deployments", {
            "model_id": model_id, "release_id": ids[version], "profile": profile,
            "kind": "deploy", "deployed_at": _ts(day, 15), "deployed_by": ACTOR,
            "reason": reason, "replaced_release_id": ids[replaced] if replaced else None,
            "forced": 0, "check_id": None, "ended_at": None})
        store.append_event(actor=ACTOR, kind="deploy", model=model, version=version,
                           reason=reason, payload={"profile": profile, "replaced": replaced},
                           ts=_ts(day, 15))


def _new_workspace(root: Path, workspaces: Any | None) -> Workspace:
    """A new workspace at ``root``: on the backend of ``workspaces`` (conftest's
    WorkspaceFactory), else on SQLite."""
    if workspaces is None:
        return init_workspace(root)[0]
    return open_workspace(workspaces.init(root))


def seed_workspace(root: Path, with_kws: bool = True, workspaces: Any | None = None) -> Path:
    """Two model lines (or hand-landmark alone) with runs, accuracy, statuses, deployments
    and events; fixed values."""
    ws = _new_workspace(root, workspaces)
    try:
        write_profiles(root)
        profiles = {name: BenchOverrides().apply(load_profile(name, root))
                    for name in PROFILE_TOML}
        with ws.store.transaction():
            dataset_id = ws.store.insert("datasets", {
                "name": "landmarks-val", "sha256": "0" * 64, "task": "classification",
                "samples": 1000, "arrays": "{}", "has_labels": 1, "source_name": "val.npz",
                "created_at": _ts(1), "created_by": ACTOR})
        hand = _seed_model(ws, "hand-landmark", "classification", HAND, 1, profiles, dataset_id)
        kws = (_seed_model(ws, "kws", "classification", KWS, 10, profiles, dataset_id)
               if with_kws else {})
        _deploy(ws, "hand-landmark", "1.0.0", hand, "big-core-1t", 1, "first release")
        _deploy(ws, "hand-landmark", "1.1.0", hand, "big-core-1t", 3,
                "int8 is 25% faster on device", replaced="1.0.0")
        _deploy(ws, "hand-landmark", "1.1.0", hand, "ci-host", 3, "CI baseline")
        if with_kws:
            _deploy(ws, "kws", "0.9.0", kws, "ci-host", 11, "baseline")
        with ws.store.transaction():
            ws.store.append_event(actor="bob", kind="promote", model="hand-landmark",
                                  version="1.2.0", reason="accuracy [bold]dropped[/bold] 5 pt",
                                  payload={"from": "candidate", "to": "rejected"},
                                  ts=_ts(4, 16))
    finally:
        ws.close()
    return root


def plain(renderable: Any, width: int = 400) -> str:
    """A rich renderable (or string) as the plain text a terminal would show."""
    from rich.console import Console

    if isinstance(renderable, str):
        return renderable
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().rstrip("\n")


def empty_workspace(root: Path, workspaces: Any | None = None) -> Path:
    ws = _new_workspace(root, workspaces)
    write_profiles(root)
    ws.close()
    return root
