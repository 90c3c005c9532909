"""``devtrack info``: where a workspace's database and artifacts are, and which versions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from devtrack.workspace import Workspace, shared_directory
from devtrack.workspace_config import artifacts_setting, database_setting

OWN_FOLDER = "this workspace's .devtrack/"


@dataclass(frozen=True)
class WorkspaceInfo:
    """What ``devtrack info`` prints; every URL with its password masked."""

    workspace: str
    backend: str  # sqlite | postgresql
    database: str
    database_from: str
    schema_version: int
    artifacts_kind: str  # local | directory | s3
    artifacts: str
    artifacts_from: str
    devtrack_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(ws: Workspace) -> WorkspaceInfo:
    """The workspace's database (backend, location, schema version, where that was set) and
    its artifact store, as the commands run in it will use them."""
    from devtrack import __version__

    database = database_setting(ws.root)
    artifacts = artifacts_setting(ws.root)
    if artifacts is None:
        kind, where, source = "local", str(ws.artifacts.root), OWN_FOLDER
    elif artifacts.value.startswith("s3://"):
        kind, where, source = "s3", artifacts.value, artifacts.source
    else:
        kind, where, source = "directory", str(shared_directory(artifacts)), artifacts.source
    return WorkspaceInfo(
        workspace=str(ws.root), backend=ws.store.backend, database=ws.store.location,
        database_from=database.source if database is not None else OWN_FOLDER,
        schema_version=ws.store.schema_version, artifacts_kind=kind, artifacts=where,
        artifacts_from=source, devtrack_version=__version__)
