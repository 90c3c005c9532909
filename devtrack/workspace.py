"""Finding and creating a workspace: a folder holding ``.devtrack/`` (database + artifacts)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack.errors import WorkspaceError
from devtrack.store import DB_FILENAME, Store, create_store, open_store

if TYPE_CHECKING:
    from devtrack.artifacts import ArtifactStore

# Imports of artifacts and profiles are deferred: listing releases needs neither, and
# start-up time of read-only commands is a budget (see benchmarks/).

DOT_DIR = ".devtrack"
ENV_VAR = "DEVTRACK_WORKSPACE"


@dataclass
class Workspace:
    """An open workspace: its root folder, database and artifact store."""

    root: Path
    store: Store

    @property
    def dot_dir(self) -> Path:
        return self.root / DOT_DIR

    @property
    def artifacts(self) -> ArtifactStore:
        """The local store, or object storage when DEVTRACK_ARTIFACTS_URL names a bucket."""
        from devtrack.artifacts import ArtifactStore, RemoteArtifactStore
        from devtrack.objectstore import cache_folder, configured_url

        bucket = configured_url()
        if bucket is None:
            return ArtifactStore(self.dot_dir / "artifacts")
        return RemoteArtifactStore(cache_folder(bucket) / "artifacts", bucket)

    @property
    def profiles_dir(self) -> Path:
        from devtrack.profiles import workspace_profiles_dir

        return workspace_profiles_dir(self.root)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _database_missing(root: Path) -> WorkspaceError:
    dot = root / DOT_DIR
    return WorkspaceError(
        f"{dot} has no database ({DB_FILENAME} is missing from it); restore {dot / DB_FILENAME} "
        f"from a backup, or run 'devtrack init {root}' to start a new, empty one (the files in "
        f"{dot / 'artifacts'} are kept)")


def find_workspace_root(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """Locate the workspace: ``explicit`` or $DEVTRACK_WORKSPACE, else walk up from ``start``.

    The walk stops at the first ``.devtrack/`` folder, as git's stops at ``.git``: one that
    lost its database is reported, never skipped for a workspace further up.
    """
    chosen = explicit if explicit is not None else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        root = Path(chosen).expanduser().resolve()
        if not (root / DOT_DIR / DB_FILENAME).is_file():
            if (root / DOT_DIR).is_dir():
                raise _database_missing(root)
            source = "--workspace" if explicit is not None else f"${ENV_VAR}"
            raise WorkspaceError(
                f"{root} is not a devtrack workspace (from {source}); "
                f"run 'devtrack init {root}' first"
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / DOT_DIR / DB_FILENAME).is_file():
            return candidate
        if (candidate / DOT_DIR).is_dir():
            raise _database_missing(candidate)
    raise WorkspaceError(
        f"not inside a devtrack workspace (looked in {here} and its parents); run "
        "'devtrack init' here, or pass --workspace DIR / set DEVTRACK_WORKSPACE"
    )


def open_workspace(explicit: str | Path | None = None, start: Path | None = None) -> Workspace:
    root = find_workspace_root(explicit, start)
    return Workspace(root, open_store(root / DOT_DIR / DB_FILENAME))


def init_workspace(directory: Path) -> tuple[Workspace, bool]:
    """Create (or reopen) a workspace in ``directory``. Returns it and whether it was new.

    The shipped device profiles are copied into ``directory/device_profiles/`` so a team can
    edit its own; files already there are never overwritten.
    """
    root = directory.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a directory; pick another path")
    dot = root / DOT_DIR
    db_path = dot / DB_FILENAME
    created = not db_path.exists()
    (dot / "artifacts" / "sha256").mkdir(parents=True, exist_ok=True)
    store = create_store(db_path)
    from devtrack.profiles import copy_shipped_profiles, workspace_profiles_dir

    copy_shipped_profiles(workspace_profiles_dir(root))
    return Workspace(root, store), created
