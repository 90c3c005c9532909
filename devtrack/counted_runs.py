"""The run whose figures count for (release, profile), and its accuracy: one rule, read here.

The rule (``core.counting.choose_run``): the newest ok run whose conditions match the profile
now. The review app's table and detail, ``releases --profile``, ``show``, ``check``,
``compare`` on stored runs, ``trend`` and ``rollback`` all read their runs through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtrack import queries
from devtrack.core.counting import RunChoice, choose_run
from devtrack.core.profile import Profile
from devtrack.records import Run
from devtrack.workspace import Workspace


def conditions_now(profile: Profile | None) -> str | None:
    """The conditions runs must match to count; None for a profile no longer defined."""
    return profile.conditions_hash if profile is not None else None


def choose(ws: Workspace, release_id: int, profile: str,
           conditions: str | None) -> RunChoice[dict[str, Any]]:
    """The choice among one release's runs on ``profile`` (their figures, not samples)."""
    return choose_run(queries.run_figures(ws.store, release_id, profile), conditions)


def counted_run(ws: Workspace, release_id: int, profile: str,
                conditions: str | None) -> tuple[Run | None, RunChoice[dict[str, Any]]]:
    """The whole stored run (samples included) that counts, and the choice."""
    choice = choose(ws, release_id, profile, conditions)
    if choice.run is None:
        return None, choice
    return queries.run(ws.store, int(choice.run["id"])), choice


def counted_runs(ws: Workspace, model_id: int, profile: str,
                 conditions: str | None) -> dict[int, RunChoice[dict[str, Any]]]:
    """The choice for every release of a model line on ``profile``, in one query."""
    by_release: dict[int, list[dict[str, Any]]] = {}
    for row in queries.run_figures_of_model(ws.store, model_id, profile):
        by_release.setdefault(int(row["release_id"]), []).append(row)
    return {rid: choose_run(runs, conditions) for rid, runs in by_release.items()}


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
    return queries.newest_accuracy(ws.store, release_id, profile, conditions)


def counted_evaluations(ws: Workspace, model_id: int, profile: str,
                        choices: Mapping[int, RunChoice[dict[str, Any]]]
                        ) -> dict[int, dict[str, Any]]:
    """:func:`counted_evaluation` of every release with a run that counts, in one query
    (``choices`` from :func:`counted_runs`)."""
    out: dict[int, dict[str, Any]] = {}
    for row in queries.accuracies_of_model(ws.store, model_id, profile):  # newer rows win
        choice = choices.get(int(row["release_id"]))
        if choice is not None and choice.run is not None and (
                row["conditions_hash"] == choice.run["conditions_hash"]):
            out[int(row["release_id"])] = row
    return out
