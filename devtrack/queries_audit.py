"""``audit verify``'s questions to the database (``artifact_audit.py``), over either backend:
the stored files the rows name."""

from __future__ import annotations

from devtrack.store_contract import StoreBackend

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
