"""``audit verify``'s questions to the database (``auditing.py``, ``artifact_audit.py``), over
either backend: every table as the cross-check reads it — rows keyed by column, names joined
in (MODEL@VERSION) where the events name releases — and the stored files the rows name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devtrack.core.audit_state import RELEASE_SEALED_FIELDS, RUN_SEALED_FIELDS
from devtrack.store_contract import StoreBackend

Row = dict[str, Any]

_RELEASE_COLUMNS = ", ".join(f"r.{f}" for f in RELEASE_SEALED_FIELDS if f != "parent")
_RUN_COLUMNS = ", ".join(f"u.{f}" for f in RUN_SEALED_FIELDS)
_RELEASES_SQL = f"""
    SELECT r.id, m.name AS model, r.version, r.artifact_sha256, r.status, r.notes,
           p.version AS parent, a.size_bytes, a.format, a.created_at AS artifact_created_at,
           {_RELEASE_COLUMNS}
    FROM releases r JOIN models m ON m.id = r.model_id
    LEFT JOIN releases p ON p.id = r.parent_id
    LEFT JOIN artifacts a ON a.sha256 = r.artifact_sha256"""
_RUNS_SQL = f"""
    SELECT u.id, m.name AS model, r.version, u.samples, u.conditions_hash, {_RUN_COLUMNS}
    FROM runs u JOIN releases r ON r.id = u.release_id JOIN models m ON m.id = r.model_id
    ORDER BY u.id"""
_EVALUATIONS_SQL = """
    SELECT e.id, e.run_id, d.name AS dataset, e.task, e.metrics, e.accuracy, e.predictions,
           rm.name || '@' || rr.version AS reference, e.fidelity, e.nonfinite, e.created_at
    FROM evaluations e LEFT JOIN datasets d ON d.id = e.dataset_id
    LEFT JOIN releases rr ON rr.id = e.reference_release_id
    LEFT JOIN models rm ON rm.id = rr.model_id"""
_CHECKS_SQL = """
    SELECT c.id, m.name AS model, r.version, c.profile, c.profile_hash, c.passed, c.report,
           c.actor, c.created_at, bm.name || '@' || b.version AS baseline
    FROM checks c JOIN releases r ON r.id = c.release_id JOIN models m ON m.id = r.model_id
    LEFT JOIN releases b ON b.id = c.baseline_release_id
    LEFT JOIN models bm ON bm.id = b.model_id"""
_COMPARISONS_SQL = """
    SELECT c.id, m.name AS model, r.version, c.profile, c.status, c.ratio, c.verdict,
           b.version AS baseline, c.profile_hash, c.error, c.ci_low, c.ci_high, c.ratios,
           c.details, c.created_at, c.actor
    FROM comparisons c JOIN releases r ON r.id = c.candidate_release_id
    JOIN models m ON m.id = r.model_id
    LEFT JOIN releases b ON b.id = c.baseline_release_id"""
_DEPLOYMENTS_SQL = """
    SELECT d.id, m.name AS model, r.version, d.profile, d.kind, d.reason, d.forced,
           d.check_id, p.version AS replaced, d.ended_at, d.deployed_at, d.deployed_by
    FROM deployments d JOIN releases r ON r.id = d.release_id JOIN models m ON m.id = d.model_id
    LEFT JOIN releases p ON p.id = d.replaced_release_id"""
_DATASETS_SQL = ("SELECT id, name, sha256, task, samples, source_name, arrays, has_labels, "
                 "created_at, created_by FROM datasets")
_MODELS_SQL = "SELECT id, name, task, default_dataset, created_at FROM models"


# -- the tables, as the cross-check reads them (core/audit_state.py) --------------------------

def event_count(store: StoreBackend) -> int:
    """How many events the chain holds."""
    row = store.one("SELECT COUNT(*) AS n FROM events")
    return int(row["n"]) if row is not None else 0


def audited_releases(store: StoreBackend) -> list[Row]:
    """Every release: its sealed fields, model name, parent's version and its artifact row's
    size, format and created_at (``artifact_created_at``; None when that row is gone)."""
    return store.query(_RELEASES_SQL)


def audited_runs(store: StoreBackend) -> Iterator[Row]:
    """Every run, oldest first, streamed (samples are big): id, model, version, samples,
    conditions_hash and the sealed fields (RUN_SEALED_FIELDS)."""
    return store.iterate(_RUNS_SQL)


def audited_evaluations(store: StoreBackend, evaluation_id: int | None = None) -> Iterator[Row]:
    """Every evaluation (or the one with ``evaluation_id``), streamed (predictions are big):
    its sealed fields, its dataset's name and its fidelity reference as MODEL@VERSION."""
    if evaluation_id is None:
        return store.iterate(_EVALUATIONS_SQL)
    return store.iterate(_EVALUATIONS_SQL + " WHERE e.id = ?", (evaluation_id,))


def audited_checks(store: StoreBackend) -> list[Row]:
    """Every check with its release's model and version and its baseline as MODEL@VERSION."""
    return store.query(_CHECKS_SQL)


def audited_comparisons(store: StoreBackend, comparison_id: int | None = None) -> list[Row]:
    """Every comparison (or the one with ``comparison_id``), its block ratios included, with
    the candidate's model and version and the baseline's version."""
    if comparison_id is None:
        return store.query(_COMPARISONS_SQL)
    return store.query(_COMPARISONS_SQL + " WHERE c.id = ?", (comparison_id,))


def audited_deployments(store: StoreBackend) -> list[Row]:
    """Every deployment with its model, version and the version it replaced (``replaced``)."""
    return store.query(_DEPLOYMENTS_SQL)


def audited_datasets(store: StoreBackend) -> list[Row]:
    """Every dataset's columns (all of them: what a ``dataset_add`` event seals)."""
    return store.query(_DATASETS_SQL)


def audited_models(store: StoreBackend) -> list[Row]:
    """Every model line: id, name, task, default_dataset, created_at."""
    return store.query(_MODELS_SQL)


# -- the stored files the rows name (artifact_audit.py) ---------------------------------------

def artifact_sizes(store: StoreBackend) -> list[tuple[str, int | None]]:
    """(sha256, size in bytes as recorded) of every row of the artifacts table."""
    return [(str(row["sha256"]), row["size_bytes"])
            for row in store.query("SELECT sha256, size_bytes FROM artifacts")]


def release_artifacts(store: StoreBackend) -> list[tuple[str, str]]:
    """(artifact sha256, MODEL@VERSION) of every release, oldest first."""
    return [(str(row["sha"]), str(row["ref"])) for row in store.query(
        "SELECT r.artifact_sha256 AS sha, m.name || '@' || r.version AS ref FROM releases r "
        "JOIN models m ON m.id = r.model_id ORDER BY r.id")]


def dataset_files(store: StoreBackend) -> list[tuple[str, str]]:
    """(sha256, name) of every dataset, oldest first."""
    return [(str(row["sha256"]), str(row["name"]))
            for row in store.query("SELECT sha256, name FROM datasets ORDER BY id")]
