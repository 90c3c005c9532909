"""The library's questions to the database, one function each, over either backend: SQL in
SQLite's dialect with ``?`` (PostgreSQL's backend translates it); whole rows come back as
records (records.py), partial ones as dicts keyed by column."""

from __future__ import annotations

from typing import Any

from devtrack.records import Run, from_row
from devtrack.store_contract import StoreBackend

Row = dict[str, Any]

# -- runs -------------------------------------------------------------------------------------

# What choosing the run that counts needs of every run (core/counting.py), and what the
# tables show of the one chosen.
RUN_FIGURES = ("id", "release_id", "status", "error", "conditions_hash", "p50_ms", "p90_ms",
               "peak_rss_mb", "warnings")
_FIGURES = ", ".join(f"runs.{c}" for c in RUN_FIGURES)


def run(store: StoreBackend, run_id: int) -> Run | None:
    """One whole run, samples included."""
    row = store.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    return from_row(Run, row) if row is not None else None


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
