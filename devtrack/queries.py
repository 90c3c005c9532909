"""The library's questions to the database, one function each, over either backend: SQL in
SQLite's dialect with ``?`` (PostgreSQL's backend translates it); whole rows come back as
records (records.py), partial ones as dicts keyed by column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devtrack.store_contract import StoreBackend

if TYPE_CHECKING:
    from devtrack.records import Dataset, Run

# records.py (a dozen dataclasses, ~10 ms to create) is imported by the functions that build
# records: `devtrack releases` reaches this module through registry.py and builds none.

Row = dict[str, Any]

# -- runs -------------------------------------------------------------------------------------

# What choosing the run that counts needs of every run (core/counting.py), and what the
# tables show of the one chosen.
RUN_FIGURES = ("id", "release_id", "status", "error", "conditions_hash", "p50_ms", "p90_ms",
               "p95_ms", "stop_reason", "peak_rss_mb", "warnings")
_FIGURES = ", ".join(f"runs.{c}" for c in RUN_FIGURES)


def run(store: StoreBackend, run_id: int) -> Run | None:
    """One whole run, samples included."""
    from devtrack.records import Run, from_row

    row = store.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    return from_row(Run, row) if row is not None else None


def runs_of_release(store: StoreBackend, release_id: int,
                    profile: str | None = None) -> list[Run]:
    """Every run of a release (on ``profile``, or on any), oldest first, samples included."""
    if profile is None:
        rows = store.query("SELECT * FROM runs WHERE release_id = ? ORDER BY id", (release_id,))
    else:
        rows = store.query("SELECT * FROM runs WHERE release_id = ? AND profile = ? "
                           "ORDER BY id", (release_id, profile))
    from devtrack.records import Run, from_row

    return [from_row(Run, row) for row in rows]


def runs_stopped_by(store: StoreBackend, release_id: int, profile: str,
                    stop_reason: str) -> list[Row]:
    """``id`` and ``details`` of one release's runs on ``profile`` with this ``stop_reason``
    (``benchmark_model``: the runs holding only aggregates, imported or measured on a phone)."""
    return store.query("SELECT id, details FROM runs WHERE release_id = ? AND profile = ? AND "
                       "stop_reason = ?", (release_id, profile, stop_reason))


def run_figures(store: StoreBackend, release_id: int, profile: str) -> list[Row]:
    """:data:`RUN_FIGURES` of every run of one release on ``profile``."""
    return store.query(f"SELECT {_FIGURES} FROM runs WHERE release_id = ? AND profile = ?",
                       (release_id, profile))


def run_figures_of_model(store: StoreBackend, model_id: int, profile: str) -> list[Row]:
    """:data:`RUN_FIGURES` of every run of a model line's releases on ``profile``."""
    return store.query(f"SELECT {_FIGURES} FROM runs JOIN releases r ON r.id = runs.release_id "
                       "WHERE r.model_id = ? AND runs.profile = ?", (model_id, profile))


# -- evaluations ------------------------------------------------------------------------------

_COUNTABLE_EVALUATION = (
    "SELECT e.*, r.release_id AS release_id, d.name AS dataset, d.sha256 AS dataset_sha256, "
    "d.samples AS samples FROM evaluations e JOIN runs r ON r.id = e.run_id "
    "JOIN datasets d ON d.id = e.dataset_id WHERE r.profile = ? AND r.status = 'ok' "
    "AND r.conditions_hash = ? AND e.accuracy IS NOT NULL AND r.release_id = ? "
    "ORDER BY e.id DESC LIMIT 1")


def newest_accuracy(store: StoreBackend, release_id: int, profile: str,
                    conditions: str) -> Row | None:
    """The newest evaluation with an accuracy of an ok run of the release on ``profile``
    under ``conditions``, with its release and dataset (name, sha256, samples)."""
    return store.one(_COUNTABLE_EVALUATION, (profile, conditions, release_id))


def accuracies_of_model(store: StoreBackend, model_id: int, profile: str) -> list[Row]:
    """Every evaluation with an accuracy of an ok run of a model line on ``profile``, oldest
    first: its id, run, accuracy, dataset (id, name), release and conditions."""
    return store.query(
        "SELECT e.id, e.run_id, e.accuracy, e.dataset_id, r.release_id AS release_id, "
        "r.conditions_hash AS conditions_hash, d.name AS dataset FROM evaluations e "
        "JOIN runs r ON r.id = e.run_id JOIN datasets d ON d.id = e.dataset_id "
        "JOIN releases rel ON rel.id = r.release_id WHERE rel.model_id = ? AND r.profile = ? "
        "AND r.status = 'ok' AND e.accuracy IS NOT NULL ORDER BY e.id", (model_id, profile))


# -- models and releases ----------------------------------------------------------------------

_RELEASES = """
SELECT r.*, m.name AS model, a.format AS format, a.size_bytes AS size_bytes,
       p.version AS parent_version
FROM releases r
JOIN models m ON m.id = r.model_id
JOIN artifacts a ON a.sha256 = r.artifact_sha256
LEFT JOIN releases p ON p.id = r.parent_id
"""


def model_id(store: StoreBackend, name: str) -> int | None:
    row = store.one("SELECT id FROM models WHERE name = ?", (name,))
    return int(row["id"]) if row is not None else None


def model_task(store: StoreBackend, name: str) -> str | None:
    row = store.one("SELECT task FROM models WHERE name = ?", (name,))
    return str(row["task"]) if row is not None else None


def add_model_if_new(store: StoreBackend, name: str, task: str, created_at: str) -> int:
    """The id of model line ``name``, inserted first when it is new. Call inside a write
    transaction, which makes the check-then-insert safe on both backends. (Not INSERT … ON
    CONFLICT DO NOTHING: on PostgreSQL that spends an identity value even when it inserts
    nothing, so ids would differ from SQLite's.)"""
    found = model_id(store, name)
    if found is not None:
        return found
    return store.insert("models", {"name": name, "task": task, "created_at": created_at})


def models_with_counts(store: StoreBackend) -> list[Row]:
    """Every model line by name: model, task, created_at, its number of releases and the
    latest version."""
    return store.query(
        "SELECT m.name AS model, m.task AS task, m.created_at AS created_at, "
        "COUNT(r.id) AS releases, "
        "(SELECT version FROM releases WHERE model_id = m.id ORDER BY id DESC LIMIT 1) AS latest "
        "FROM models m LEFT JOIN releases r ON r.model_id = m.id GROUP BY m.id, m.name, m.task, "
        "m.created_at ORDER BY m.name")


def release_id(store: StoreBackend, model: str, version: str) -> int | None:
    row = store.one("SELECT r.id FROM releases r JOIN models m ON m.id = r.model_id "
                    "WHERE m.name = ? AND r.version = ?", (model, version))
    return int(row["id"]) if row is not None else None


def release_sha256(store: StoreBackend, model: str, version: str) -> str | None:
    """The artifact MODEL@VERSION was registered with, if it is registered."""
    row = store.one("SELECT r.artifact_sha256 AS sha FROM releases r JOIN models m ON "
                    "m.id = r.model_id WHERE m.name = ? AND r.version = ?", (model, version))
    return str(row["sha"]) if row is not None else None


def artifact_known(store: StoreBackend, sha256: str) -> bool:
    return store.one("SELECT sha256 FROM artifacts WHERE sha256 = ?", (sha256,)) is not None


def releases(store: StoreBackend, model_id: int | None = None) -> list[Row]:
    """Whole release rows with the model's name, the artifact's format and size and the
    parent's version: of every model (by name, then age) or of one (by age)."""
    if model_id is None:
        return store.query(_RELEASES + " ORDER BY m.name, r.id")
    return store.query(_RELEASES + " WHERE r.model_id = ? ORDER BY r.id", (model_id,))


def release_row(store: StoreBackend, model_id: int, version: str | None) -> Row | None:
    """One release as :func:`releases` gives it; ``version`` None for the latest."""
    if version is None:
        return store.one(_RELEASES + " WHERE r.model_id = ? ORDER BY r.id DESC LIMIT 1",
                         (model_id,))
    return store.one(_RELEASES + " WHERE r.model_id = ? AND r.version = ?", (model_id, version))


def versions(store: StoreBackend, model_id: int) -> list[str]:
    """A model line's versions, oldest first."""
    return [str(r["version"]) for r in store.query(
        "SELECT version FROM releases WHERE model_id = ? ORDER BY id", (model_id,))]


def releases_sharing_artifacts(store: StoreBackend) -> list[Row]:
    """Releases whose artifact another release has too: id, artifact_sha256, ref
    (MODEL@VERSION), oldest first."""
    return store.query(
        "SELECT r.id, r.artifact_sha256, m.name || '@' || r.version AS ref FROM releases r "
        "JOIN models m ON m.id = r.model_id WHERE r.artifact_sha256 IN "
        "(SELECT artifact_sha256 FROM releases GROUP BY artifact_sha256 HAVING COUNT(*) > 1) "
        "ORDER BY r.id")


def release_ref(store: StoreBackend, release_id: int) -> tuple[str, str] | None:
    """(model, version) of a release."""
    row = store.one("SELECT m.name AS model, r.version FROM releases r JOIN models m "
                    "ON m.id = r.model_id WHERE r.id = ?", (release_id,))
    return (str(row["model"]), str(row["version"])) if row is not None else None


# -- deployments ------------------------------------------------------------------------------

def live_versions(store: StoreBackend, model: str) -> list[Row]:
    """Each profile's live release of a model line: rows (version, profile), by profile."""
    return store.query(
        "SELECT r.version AS version, d.profile AS profile FROM deployments d "
        "JOIN releases r ON r.id = d.release_id JOIN models m ON m.id = r.model_id "
        "WHERE m.name = ? AND d.ended_at IS NULL AND d.id = (SELECT d2.id FROM deployments d2 "
        "JOIN releases r2 ON r2.id = d2.release_id WHERE r2.model_id = r.model_id AND "
        "d2.profile = d.profile AND d2.ended_at IS NULL "
        "ORDER BY d2.deployed_at DESC, d2.id DESC LIMIT 1) ORDER BY d.profile", (model,))


def live_release_id(store: StoreBackend, release_id: int, profile: str) -> int | None:
    """The release of ``release_id``'s model line live on ``profile`` (the newest open
    deployment), if any."""
    row = store.one(
        "SELECT d.release_id FROM deployments d JOIN releases r ON r.id = d.release_id "
        "WHERE r.model_id = (SELECT model_id FROM releases WHERE id = ?) AND d.profile = ? "
        "AND d.ended_at IS NULL ORDER BY d.deployed_at DESC, d.id DESC LIMIT 1",
        (release_id, profile))
    return int(row["release_id"]) if row is not None else None


def profiles_of_release(store: StoreBackend, release_id: int) -> list[str]:
    """Profiles a release has a run on (any outcome) or its model line is live on, by name."""
    return [str(row["profile"]) for row in store.query(
        "SELECT profile FROM runs WHERE release_id = ? UNION SELECT d.profile FROM "
        "deployments d JOIN releases r ON r.id = d.release_id WHERE d.ended_at IS NULL AND "
        "r.model_id = (SELECT model_id FROM releases WHERE id = ?) ORDER BY 1",
        (release_id, release_id))]


# -- more of runs -----------------------------------------------------------------------------

def newest_profile_snapshot(store: StoreBackend, model_id: int, profile: str) -> str | None:
    """The profile as the newest run of a model line on it stored it (JSON)."""
    row = store.one(
        "SELECT runs.profile_snapshot FROM runs JOIN releases r ON r.id = runs.release_id "
        "WHERE r.model_id = ? AND runs.profile = ? ORDER BY runs.id DESC LIMIT 1",
        (model_id, profile))
    return str(row["profile_snapshot"]) if row is not None else None


def ok_profiles(store: StoreBackend, release_ids: tuple[int, ...]) -> list[tuple[int, str]]:
    """(release id, profile) for each profile with an ok run of each release, by profile."""
    if not release_ids:
        return []
    marks = ", ".join("?" for _ in release_ids)
    return [(int(row["release_id"]), str(row["profile"])) for row in store.query(
        f"SELECT DISTINCT profile, release_id FROM runs WHERE status = 'ok' AND release_id IN "
        f"({marks}) ORDER BY profile", release_ids)]


# -- more of evaluations ----------------------------------------------------------------------

def evaluations_of_runs(store: StoreBackend, run_ids: list[int]) -> list[Row]:
    """Whole evaluation rows of these runs with their dataset's name and sha256, oldest
    first."""
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    return store.query(
        "SELECT e.*, d.name AS dataset, d.sha256 AS dataset_sha256 FROM evaluations e "
        f"JOIN datasets d ON d.id = e.dataset_id WHERE e.run_id IN ({marks}) ORDER BY e.id",
        tuple(run_ids))


def newest_predictions(store: StoreBackend, run_id: int) -> bytes | None:
    """The per-sample predictions (little-endian int32) of a run's newest evaluation."""
    row = store.one("SELECT predictions FROM evaluations WHERE run_id = ? ORDER BY id DESC "
                    "LIMIT 1", (run_id,))
    return bytes(row["predictions"]) if row is not None and row["predictions"] else None


# -- stored files -----------------------------------------------------------------------------

def referenced_hashes(store: StoreBackend) -> set[str]:
    """Every sha256 a row refers to: artifacts, releases and datasets."""
    rows = store.query("SELECT sha256 AS h FROM artifacts UNION "
                       "SELECT artifact_sha256 FROM releases UNION SELECT sha256 FROM datasets")
    return {str(row["h"]) for row in rows}


# -- bundles: export and import ---------------------------------------------------------------

def release_for_export(store: StoreBackend, release_id: int) -> Row | None:
    """A whole release row with its model's name and task, the artifact's format and size,
    and the parent's version (``parent``)."""
    return store.one(
        "SELECT r.*, m.name AS model, m.task AS task, a.format, a.size_bytes, "
        "p.version AS parent FROM releases r JOIN models m ON m.id = r.model_id "
        "JOIN artifacts a ON a.sha256 = r.artifact_sha256 "
        "LEFT JOIN releases p ON p.id = r.parent_id WHERE r.id = ?", (release_id,))


def first_evaluation(store: StoreBackend, run_id: int) -> Row | None:
    """A run's first evaluation, whole, with its dataset's name, its fidelity reference as
    MODEL@VERSION (``reference``) and that release's id (``reference_id``)."""
    return store.one(
        "SELECT e.*, d.name AS dataset, rm.name || '@' || rr.version AS reference, "
        "e.reference_release_id AS reference_id FROM evaluations e "
        "JOIN datasets d ON d.id = e.dataset_id "
        "LEFT JOIN releases rr ON rr.id = e.reference_release_id "
        "LEFT JOIN models rm ON rm.id = rr.model_id WHERE e.run_id = ? ORDER BY e.id "
        "LIMIT 1", (run_id,))


def dataset(store: StoreBackend, name: str) -> Dataset | None:
    from devtrack.records import Dataset, from_row

    row = store.one("SELECT * FROM datasets WHERE name = ?", (name,))
    return from_row(Dataset, row) if row is not None else None
