"""The review app's questions to the database (``overview.py``), over either backend: few
queries each returning everything a screen shows — model lines with their counts, a line's
release table, one release's family, evaluations, deployments and events."""

from __future__ import annotations

from typing import Any

from devtrack.store_contract import StoreBackend

Row = dict[str, Any]


# -- model lines ------------------------------------------------------------------------------

def model_lines(store: StoreBackend) -> list[Row]:
    """Every model line by name, in one query: name, task, releases (count), candidates,
    approved, rejected, yanked (counts by status), latest (version)
    and live (open deployments)."""
    return store.query(
        "SELECT m.name, m.task, COUNT(r.id) AS releases, "
        "SUM(CASE WHEN r.status = 'candidate' THEN 1 ELSE 0 END) AS candidates, "
        "SUM(CASE WHEN r.status = 'approved' THEN 1 ELSE 0 END) AS approved, "
        "SUM(CASE WHEN r.status = 'rejected' THEN 1 ELSE 0 END) AS rejected, "
        "SUM(CASE WHEN r.status = 'yanked' THEN 1 ELSE 0 END) AS yanked, "
        "(SELECT version FROM releases WHERE model_id = m.id ORDER BY id DESC LIMIT 1) AS latest, "
        "(SELECT COUNT(*) FROM deployments d WHERE d.model_id = m.id AND d.ended_at IS NULL) "
        "AS live FROM models m LEFT JOIN releases r ON r.model_id = m.id "
        "GROUP BY m.id ORDER BY m.name")


def run_counts_by_profile(store: StoreBackend, model: str) -> dict[str, int]:
    """Profile name -> number of runs (any outcome) of model line ``model``'s releases on it."""
    rows = store.query(
        "SELECT runs.profile AS profile, COUNT(*) AS n FROM runs "
        "JOIN releases r ON r.id = runs.release_id JOIN models m ON m.id = r.model_id "
        "WHERE m.name = ? GROUP BY runs.profile", (model,))
    return {str(row["profile"]): int(row["n"]) for row in rows}


def versions_of_model(store: StoreBackend, model: str) -> list[str]:
    """The versions of model line ``model``, in registration order."""
    return [str(row["version"]) for row in store.query(
        "SELECT r.version FROM releases r JOIN models m ON m.id = r.model_id WHERE m.name = ? "
        "ORDER BY r.id", (model,))]


# -- a line's release table -------------------------------------------------------------------

def release_table(store: StoreBackend, model_id: int) -> list[Row]:
    """A model line's releases, oldest first, as its table shows them: id, version, status,
    created_at, notes, summary (JSON), the artifact's format and size_bytes, and the parent's
    version (``parent``)."""
    return store.query(
        "SELECT r.id, r.version, r.status, r.created_at, r.notes, a.format, a.size_bytes, "
        "r.summary, p.version AS parent FROM releases r "
        "JOIN artifacts a ON a.sha256 = r.artifact_sha256 "
        "LEFT JOIN releases p ON p.id = r.parent_id WHERE r.model_id = ? ORDER BY r.id",
        (model_id,))


def live_profiles(store: StoreBackend, model_id: int) -> list[tuple[int, str]]:
    """(release id, profile) of every open deployment of a model line, by profile."""
    return [(int(row["release_id"]), str(row["profile"])) for row in store.query(
        "SELECT release_id, profile FROM deployments WHERE model_id = ? AND ended_at IS NULL "
        "ORDER BY profile", (model_id,))]


# -- one release in full ----------------------------------------------------------------------

def release_family(store: StoreBackend, release_id: int) -> list[Row]:
    """id, version and parent_id of every release of ``release_id``'s model line."""
    return store.query("SELECT id, version, parent_id FROM releases WHERE model_id = "
                       "(SELECT model_id FROM releases WHERE id = ?)", (release_id,))


def evaluations_with_dataset(store: StoreBackend, run_ids: list[int]) -> list[Row]:
    """Whole evaluation rows of these runs with their dataset's name (``dataset``; None when
    the dataset row is gone), oldest first."""
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    return store.query(
        "SELECT e.*, d.name AS dataset FROM evaluations e "
        f"LEFT JOIN datasets d ON d.id = e.dataset_id WHERE e.run_id IN ({marks}) "
        "ORDER BY e.id", tuple(run_ids))


def deployments_of_release(store: StoreBackend, release_id: int) -> list[Row]:
    """Every deployment of one release, oldest first: the whole row and the version it
    replaced (``replaced_version``)."""
    return store.query(
        "SELECT d.*, rr.version AS replaced_version FROM deployments d "
        "LEFT JOIN releases rr ON rr.id = d.replaced_release_id "
        "WHERE d.release_id = ? ORDER BY d.id", (release_id,))


def events_of_release(store: StoreBackend, model: str, version: str) -> list[Row]:
    """Every event about MODEL@VERSION, oldest first, whole (the audit trail's rows)."""
    return store.query("SELECT * FROM events WHERE model = ? AND version = ? ORDER BY id",
                       (model, version))


def parent_and_previous(store: StoreBackend, model: str,
                        version: str) -> tuple[str | None, str | None] | None:
    """(the parent's version, the version registered just before on the line) of
    MODEL@VERSION; None when it is not registered."""
    row = store.one(
        "SELECT p.version AS parent, (SELECT version FROM releases WHERE model_id = r.model_id "
        "AND id < r.id ORDER BY id DESC LIMIT 1) AS previous FROM releases r "
        "JOIN models m ON m.id = r.model_id LEFT JOIN releases p ON p.id = r.parent_id "
        "WHERE m.name = ? AND r.version = ?", (model, version))
    if row is None:
        return None
    return row["parent"], row["previous"]


# -- the audit log ----------------------------------------------------------------------------

def event_kinds(store: StoreBackend) -> list[str]:
    """Every kind of event the trail holds, sorted."""
    return [str(row["kind"])
            for row in store.query("SELECT DISTINCT kind FROM events ORDER BY kind")]
