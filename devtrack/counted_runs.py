"""The run whose figures count for (release, profile), and its accuracy: one rule, read here.

The rule (``core.counting.choose_run``): the newest ok run whose conditions match the profile
now. The review app's table and detail, ``releases --profile``, ``show``, ``check``,
``compare`` on stored runs, ``trend`` and ``rollback`` all read their runs through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtrack.core.counting import RunChoice, choose_run
from devtrack.core.profile import Profile
from devtrack.workspace import Workspace

# What choosing needs of every run, and what the tables show of the one chosen.
_CHOICE_COLUMNS = "id, release_id, status, error, conditions_hash"
FIGURE_COLUMNS = _CHOICE_COLUMNS + (", p50_ms, p90_ms, p95_ms, stop_reason, peak_rss_mb, "
                                     "warnings")


def conditions_now(profile: Profile | None) -> str | None:
    """The conditions runs must match to count; None for a profile no longer defined."""
    return profile.conditions_hash if profile is not None else None


def choose(ws: Workspace, release_id: int, profile: str,
           conditions: str | None) -> RunChoice[dict[str, Any]]:
    """The choice among one release's runs on ``profile`` (rows without samples)."""
    rows = ws.store.query(f"SELECT {FIGURE_COLUMNS} FROM runs WHERE release_id = ? AND "
                          "profile = ?", (release_id, profile))
    return choose_run(rows, conditions)


def counted_run(ws: Workspace, release_id: int, profile: str,
                conditions: str | None) -> tuple[dict[str, Any] | None,
                                                 RunChoice[dict[str, Any]]]:
    """The full stored row (samples included) of the run that counts, and the choice."""
    choice = choose(ws, release_id, profile, conditions)
    if choice.run is None:
        return None, choice
    return ws.store.one("SELECT * FROM runs WHERE id = ?", (choice.run["id"],)), choice


def counted_runs(ws: Workspace, model_id: int, profile: str,
                 conditions: str | None) -> dict[int, RunChoice[dict[str, Any]]]:
    """The choice for every release of a model line on ``profile``, in one query."""
    rows = ws.store.query(
        f"SELECT {', '.join('runs.' + c.strip() for c in FIGURE_COLUMNS.split(','))} "
        "FROM runs JOIN releases r ON r.id = runs.release_id "
        "WHERE r.model_id = ? AND runs.profile = ?", (model_id, profile))
    by_release: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_release.setdefault(int(row["release_id"]), []).append(row)
    return {rid: choose_run(runs, conditions) for rid, runs in by_release.items()}


_EVALUATION_FROM = (
    " FROM evaluations e JOIN runs r ON r.id = e.run_id JOIN datasets d ON d.id = e.dataset_id "
    "WHERE r.profile = ? AND r.status = 'ok' AND r.conditions_hash = ? "
    "AND e.accuracy IS NOT NULL")
_EVALUATION_SQL = ("SELECT e.*, r.release_id AS release_id, d.name AS dataset, "
                   "d.sha256 AS dataset_sha256, d.samples AS samples" + _EVALUATION_FROM)


def counted_evaluation(ws: Workspace, release_id: int, profile: str,
                       conditions: str | None) -> dict[str, Any] | None:
    """The newest evaluation with an accuracy from an ok run under ``conditions`` (the
    counted run's own conditions when the profile is no longer defined): a timing-only run
    after an evaluated one keeps the accuracy, a run under other conditions never lends it."""
    if conditions is None:
        run = choose(ws, release_id, profile, None).run
        if run is None:
            return None
        conditions = str(run["conditions_hash"])
    return ws.store.one(_EVALUATION_SQL + " AND r.release_id = ? ORDER BY e.id DESC LIMIT 1",
                        (profile, conditions, release_id))


def counted_evaluations(ws: Workspace, model_id: int, profile: str,
                        choices: Mapping[int, RunChoice[dict[str, Any]]]
                        ) -> dict[int, dict[str, Any]]:
    """:func:`counted_evaluation` of every release with a run that counts, in one query
    (``choices`` from :func:`counted_runs`)."""
    rows = ws.store.query(
        "SELECT e.id, e.run_id, e.accuracy, e.dataset_id, r.release_id AS release_id, "
        "r.conditions_hash AS conditions_hash, d.name AS dataset FROM evaluations e "
        "JOIN runs r ON r.id = e.run_id JOIN datasets d ON d.id = e.dataset_id "
        "JOIN releases rel ON rel.id = r.release_id WHERE rel.model_id = ? AND r.profile = ? "
        "AND r.status = 'ok' AND e.accuracy IS NOT NULL ORDER BY e.id", (model_id, profile))
    out: dict[int, dict[str, Any]] = {}
    for row in rows:  # later (newer) rows win
        choice = choices.get(int(row["release_id"]))
        if choice is not None and choice.run is not None and (
                row["conditions_hash"] == choice.run["conditions_hash"]):
            out[int(row["release_id"])] = row
    return out
