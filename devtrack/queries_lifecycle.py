"""The release lifecycle's questions to the database (``lifecycle.py``), over either backend:
a release's status and notes, its checks, deployments and their history. Writes are called
inside the caller's write transaction, beside the event that records them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devtrack.store_contract import StoreBackend

if TYPE_CHECKING:
    from devtrack.records import Check

Row = dict[str, Any]

# records.py is imported by the functions that build records (as in queries.py).

# -- releases: status and notes ---------------------------------------------------------------

def release_status_and_notes(store: StoreBackend, release_id: int) -> tuple[str, str] | None:
    """(status, notes) of a release as stored now (read them under the write lock to act on
    them)."""
    row = store.one("SELECT status, notes FROM releases WHERE id = ?", (release_id,))
    return (str(row["status"]), str(row["notes"])) if row is not None else None


def set_release_status(store: StoreBackend, release_id: int, status: str) -> int:
    """Give a release a new status; the number of releases changed."""
    return store.execute("UPDATE releases SET status = ? WHERE id = ?", (status, release_id))


def set_release_notes(store: StoreBackend, release_id: int, notes: str) -> int:
    """Replace a release's notes; the number of releases changed."""
    return store.execute("UPDATE releases SET notes = ? WHERE id = ?", (notes, release_id))


def release_version(store: StoreBackend, release_id: int) -> str | None:
    """The version of a release."""
    row = store.one("SELECT version FROM releases WHERE id = ?", (release_id,))
    return str(row["version"]) if row is not None else None


# -- checks -----------------------------------------------------------------------------------

def latest_check(store: StoreBackend, release_id: int, profile: str,
                 profile_hash: str) -> Check | None:
    """The newest check of a release on ``profile`` made under ``profile_hash``, whole."""
    from devtrack.records import Check, from_row

    row = store.one("SELECT * FROM checks WHERE release_id = ? AND profile = ? AND "
                    "profile_hash = ? ORDER BY id DESC LIMIT 1",
                    (release_id, profile, profile_hash))
    return from_row(Check, row) if row is not None else None


def check_count(store: StoreBackend, release_id: int, profile: str) -> int:
    """How many checks of a release on ``profile`` there are, under any version of it."""
    row = store.one("SELECT COUNT(*) AS n FROM checks WHERE release_id = ? AND profile = ?",
                    (release_id, profile))
    return int(row["n"]) if row is not None else 0


# -- deployments ------------------------------------------------------------------------------

_DEPLOYMENTS = """
SELECT d.*, m.name AS model, r.version AS version, p.version AS replaced_version
FROM deployments d
JOIN models m ON m.id = d.model_id
JOIN releases r ON r.id = d.release_id
LEFT JOIN releases p ON p.id = d.replaced_release_id
"""
# Rows of _DEPLOYMENTS: the whole deployment with its model's name, its release's version
# and the version it replaced (``replaced_version``).


def deployment_history(store: StoreBackend, model_id: int,
                       profile: str | None = None) -> list[Row]:
    """Every deployment of a model line (on ``profile``, or on any), oldest first: the whole
    row with ``model``, ``version`` and ``replaced_version``."""
    if profile is None:
        return store.query(_DEPLOYMENTS + " WHERE d.model_id = ? ORDER BY d.id", (model_id,))
    return store.query(_DEPLOYMENTS + " WHERE d.model_id = ? AND d.profile = ? ORDER BY d.id",
                       (model_id, profile))


def live_deployment(store: StoreBackend, model_id: int, profile: str) -> Row | None:
    """The deployment of a model line live on ``profile`` now (the newest open one), as
    :func:`deployment_history` gives it."""
    return store.one(_DEPLOYMENTS + " WHERE d.model_id = ? AND d.profile = ? AND "
                     "d.ended_at IS NULL ORDER BY d.id DESC LIMIT 1", (model_id, profile))


def deployment(store: StoreBackend, deployment_id: int) -> Row | None:
    """One deployment, as :func:`deployment_history` gives it."""
    return store.one(_DEPLOYMENTS + " WHERE d.id = ?", (deployment_id,))


def live_release_on(store: StoreBackend, model_id: int, profile: str) -> int | None:
    """The release of a model line an open deployment on ``profile`` holds, if any."""
    row = store.one("SELECT release_id FROM deployments WHERE model_id = ? AND profile = ? "
                    "AND ended_at IS NULL", (model_id, profile))
    return int(row["release_id"]) if row is not None else None


def profiles_running(store: StoreBackend, release_id: int) -> list[str]:
    """The profiles a release is live on (an open deployment), by name."""
    return [str(row["profile"]) for row in store.query(
        "SELECT profile FROM deployments WHERE release_id = ? AND ended_at IS NULL "
        "ORDER BY profile", (release_id,))]


def ever_deployed(store: StoreBackend, model_id: int) -> set[int]:
    """The ids of a model line's releases that have ever been deployed (or rolled back to)."""
    return {int(row["release_id"]) for row in store.query(
        "SELECT DISTINCT release_id FROM deployments WHERE model_id = ?", (model_id,))}


def end_deployments(store: StoreBackend, model_id: int, profile: str, ended_at: str) -> int:
    """End whatever of a model line is live on ``profile`` (``ended_at``); the number of
    deployments ended."""
    return store.execute("UPDATE deployments SET ended_at = ? WHERE model_id = ? AND "
                         "profile = ? AND ended_at IS NULL", (ended_at, model_id, profile))
