"""Typed rows of devtrack's tables: one frozen dataclass per table whose fields are its columns,
in order — the one list of columns that both backends' schemas are checked against
(tests/test_records.py), that ``db copy`` copies and that the queries read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Meta:
    key: str
    value: str


@dataclass(frozen=True)
class Model:
    id: int
    name: str
    task: str
    created_at: str
    default_dataset: str | None


@dataclass(frozen=True)
class Artifact:
    sha256: str
    format: str
    size_bytes: int
    created_at: str


@dataclass(frozen=True)
class Release:
    id: int
    model_id: int
    version: str
    artifact_sha256: str
    parent_id: int | None
    status: str
    notes: str
    data_version: str | None
    data_sha256: str | None
    config: str | None  # JSON
    run_id: str | None
    tags: str  # JSON
    input_specs: str  # JSON
    fills: str  # JSON
    source_name: str | None
    git_commit: str | None
    git_dirty: int | None
    created_by: str
    host: str
    created_at: str
    devtrack_version: str
    summary: str  # JSON


@dataclass(frozen=True)
class Event:
    id: int
    ts: str
    actor: str
    kind: str
    model: str | None
    version: str | None
    payload: str  # JSON, as hashed
    reason: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Run:
    id: int
    release_id: int
    profile: str
    profile_hash: str
    profile_snapshot: str  # JSON
    status: str
    error: str | None
    started_at: str
    finished_at: str
    actor: str
    host: str
    runtime: str | None
    runtime_version: str | None
    import_ms: float | None
    init_ms: float | None
    first_ms: float | None
    warmup_ms: float | None
    n: int | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None
    cv: float | None
    ci_low_ms: float | None
    ci_high_ms: float | None
    stop_reason: str | None
    baseline_rss_mb: float | None
    load_peak_mb: float | None
    load_delta_mb: float | None
    inference_peak_mb: float | None
    peak_rss_mb: float | None
    memory_method: str | None
    samples: bytes | None  # little-endian float32 milliseconds
    inputs: str | None  # JSON
    environment: str | None  # JSON
    warnings: str  # JSON list
    op_profile: str | None  # JSON
    details: str | None  # JSON
    conditions_hash: str


@dataclass(frozen=True)
class Dataset:
    id: int
    name: str
    sha256: str
    task: str
    samples: int
    arrays: str  # JSON
    has_labels: int
    source_name: str | None
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Evaluation:
    id: int
    run_id: int
    dataset_id: int
    task: str
    metrics: str  # JSON
    accuracy: float | None
    predictions: bytes | None
    reference_release_id: int | None
    fidelity: str | None  # JSON
    nonfinite: int
    created_at: str


@dataclass(frozen=True)
class Comparison:
    id: int
    baseline_release_id: int
    candidate_release_id: int
    profile: str
    profile_hash: str
    status: str
    error: str | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str | None
    ratios: bytes | None  # little-endian float32 block ratios
    details: str | None  # JSON
    created_at: str
    actor: str


@dataclass(frozen=True)
class Check:
    id: int
    release_id: int
    baseline_release_id: int | None
    profile: str
    profile_hash: str
    passed: int
    report: str  # JSON
    created_at: str
    actor: str


@dataclass(frozen=True)
class Deployment:
    id: int
    model_id: int
    release_id: int
    profile: str
    kind: str
    deployed_at: str
    deployed_by: str
    reason: str
    replaced_release_id: int | None
    forced: int
    check_id: int | None
    ended_at: str | None


TABLES: dict[str, type] = {
    "meta": Meta, "models": Model, "artifacts": Artifact, "releases": Release,
    "events": Event, "runs": Run, "datasets": Dataset, "evaluations": Evaluation,
    "comparisons": Comparison, "checks": Check, "deployments": Deployment,
}
"""Every table of devtrack's schema and the record of its rows."""


def columns(record: type) -> tuple[str, ...]:
    """The columns of the table whose rows ``record`` holds, in the schema's order."""
    return tuple(f.name for f in fields(record))


def table_columns(table: str) -> tuple[str, ...]:
    return columns(TABLES[table])


def from_row(record: type[T], row: Mapping[str, Any]) -> T:
    """``row`` (a whole row, keyed by column; extra keys such as joined names are ignored)
    as a ``record``."""
    return record(**{name: row[name] for name in columns(record)})
