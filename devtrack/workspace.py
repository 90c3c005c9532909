"""Finding, opening and creating a workspace: a folder holding ``.devtrack/`` (the SQLite
database and the artifacts), or, with a PostgreSQL URL, only ``device_profiles/``."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack.errors import UsageError, WorkspaceError
from devtrack.store import DB_FILENAME, create_store, open_store
from devtrack.workspace_config import (
    ARTIFACTS_VARIABLE,
    DATABASE_VARIABLE,
    DOT_DIR,
    Setting,
    artifacts_setting,
    database_in_environment,
    database_setting,
)

if TYPE_CHECKING:
    from devtrack.artifacts import ArtifactStore
    from devtrack.store_contract import StoreBackend

# Imports of artifacts, profiles and psycopg are deferred: listing releases needs none of
# them, and start-up time of read-only commands is a budget (see benchmarks/).

ENV_VAR = "DEVTRACK_WORKSPACE"
PROFILES_DIRNAME = "device_profiles"


@dataclass
class Workspace:
    """An open workspace: its root folder, database and artifact store."""

    root: Path
    store: StoreBackend

    @property
    def dot_dir(self) -> Path:
        return self.root / DOT_DIR

    @functools.cached_property
    def artifacts(self) -> ArtifactStore:
        """The workspace's own ``.devtrack/artifacts``, or the store that
        DEVTRACK_ARTIFACTS_URL (or ``[artifacts] url``) names: a shared directory or a bucket.
        Decided once per open workspace (the setting is read from the config file)."""
        from devtrack.artifacts import ArtifactStore, RemoteArtifactStore
        from devtrack.objectstore import cache_folder, parse_url

        setting = artifacts_setting(self.root)
        if setting is None:
            return ArtifactStore(self.dot_dir / "artifacts")
        if setting.value.startswith("s3://"):
            bucket = parse_url(setting.value)
            return RemoteArtifactStore(cache_folder(bucket) / "artifacts", bucket)
        return ArtifactStore(shared_directory(setting) / "artifacts")

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


def directory_of(value: str, source: str) -> Path:
    """The folder an artifacts setting names: a path, or ``file:///path``."""
    text = value[len("file://"):] if value.startswith("file://") else value
    if "://" in text:
        raise UsageError(f"{source}={value!r} is not supported: give a directory (shared by "
                         "every runner) or s3://BUCKET/PREFIX")
    return Path(text).expanduser().resolve()


def shared_directory(setting: Setting) -> Path:
    """The existing folder a shared artifact store lives in (its files under ``artifacts/``,
    writers' pins under ``locks/``); WorkspaceError naming the setting when it is missing."""
    folder = directory_of(setting.value, setting.source)
    if not folder.is_dir():
        raise WorkspaceError(f"the artifact store {folder} (from {setting.source}) is not a "
                             "directory; create it (mkdir), mount it, or fix the setting")
    return folder


def _database_missing(root: Path) -> WorkspaceError:
    dot = root / DOT_DIR
    return WorkspaceError(
        f"{dot} has no database ({DB_FILENAME} is missing from it); restore {dot / DB_FILENAME} "
        f"from a backup, or run 'devtrack init {root}' to start a new, empty one (the files in "
        f"{dot / 'artifacts'} are kept)")


def _is_workspace(root: Path) -> bool:
    """A folder whose ``.devtrack/`` has the SQLite database or records a database URL."""
    if (root / DOT_DIR / DB_FILENAME).is_file():
        return True
    return (root / DOT_DIR).is_dir() and database_setting(root) is not None


def find_workspace_root(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """Locate the workspace: ``explicit`` or $DEVTRACK_WORKSPACE, else walk up from ``start``.

    The walk stops at the first ``.devtrack/`` folder, as git's stops at ``.git``: one that
    lost its database is reported, never skipped for a workspace further up. With
    $DEVTRACK_DATABASE_URL set, a folder needs no ``.devtrack/``: the walk also stops at one
    with ``device_profiles/``, and ends in ``start`` itself (a CI runner's checkout).
    """
    shared = database_in_environment()
    chosen = explicit if explicit is not None else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        root = Path(chosen).expanduser().resolve()
        if _is_workspace(root) or (shared and root.is_dir()):
            return root
        if (root / DOT_DIR).is_dir():
            raise _database_missing(root)
        source = "--workspace" if explicit is not None else f"${ENV_VAR}"
        raise WorkspaceError(
            f"{root} is not a devtrack workspace (from {source}); "
            f"run 'devtrack init {root}' first"
        )
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _is_workspace(candidate):
            return candidate
        if (candidate / DOT_DIR).is_dir():
            if shared:
                return candidate
            raise _database_missing(candidate)
        if shared and (candidate / PROFILES_DIRNAME).is_dir():
            return candidate
    if shared:
        return here
    raise WorkspaceError(
        f"not inside a devtrack workspace (looked in {here} and its parents); run "
        "'devtrack init' here, or pass --workspace DIR / set DEVTRACK_WORKSPACE "
        f"(or ${DATABASE_VARIABLE} for a shared PostgreSQL database)"
    )


def _open_database(root: Path) -> StoreBackend:
    """The PostgreSQL store the settings name (psycopg is imported only then), else the
    workspace's SQLite file."""
    setting = database_setting(root)
    if setting is None:
        return open_store(root / DOT_DIR / DB_FILENAME)
    return open_shared_database(setting)


def open_shared_database(setting: Setting) -> StoreBackend:
    """Connect to the PostgreSQL database a setting names, refusing a URL that is not one."""
    from devtrack.core.database_url import is_postgres_url, mask_password

    if not is_postgres_url(setting.value):
        raise UsageError(f"{setting.source}: {mask_password(setting.value)!r} is not a "
                         "PostgreSQL URL; expected postgresql://USER@HOST:PORT/DATABASE")
    from devtrack.postgres.backend import open_postgres_store

    return open_postgres_store(setting.value)


def open_workspace(explicit: str | Path | None = None, start: Path | None = None) -> Workspace:
    root = find_workspace_root(explicit, start)
    return Workspace(root, _open_database(root))


def init_workspace(directory: Path, *, database: str | None = None,
                   artifacts: str | None = None) -> tuple[Workspace, bool]:
    """Create (or reopen) a workspace in ``directory``. Returns it and whether it was new.

    ``database`` (a PostgreSQL URL without a password) and ``artifacts`` (a shared directory
    or ``s3://BUCKET/PREFIX``) are recorded in ``.devtrack/config.toml``; with a database URL
    (given, or in $DEVTRACK_DATABASE_URL) no SQLite file is created. Everything is checked,
    and the database reached, before anything is written. The shipped device profiles are
    copied into ``directory/device_profiles/`` so a team can edit its own; files already
    there are never overwritten.
    """
    from devtrack.workspace_config import record

    root = directory.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a directory; pick another path")
    artifacts_dir = _checked_artifacts(artifacts)
    if database is not None:
        from devtrack.core.database_url import refuse_stored_password

        refuse_stored_password(database)
        if (root / DOT_DIR / DB_FILENAME).exists():
            raise UsageError(f"{root} already has its own SQLite database; give --database "
                             "to a new folder (or copy this one's data with devtrack db copy)")
        setting: Setting | None = Setting(database, "--database")
    else:
        setting = database_setting(root if root.is_dir() else None)
    dot = root / DOT_DIR
    if setting is not None:
        store = open_shared_database(setting)  # reached, recognised and migrated first
        created = not (dot.is_dir() and database_setting(root) is not None)
    else:
        store = None
        created = not (dot / DB_FILENAME).exists()
    try:
        dot.mkdir(parents=True, exist_ok=True)
        if database is not None:
            record(root, "database", database)
        if artifacts is not None:
            if artifacts_dir is not None:
                (artifacts_dir / "artifacts" / "sha256").mkdir(parents=True, exist_ok=True)
            record(root, "artifacts", str(artifacts_dir) if artifacts_dir else artifacts)
        elif artifacts_setting(root) is None:
            (dot / "artifacts" / "sha256").mkdir(parents=True, exist_ok=True)
        if store is None:
            store = create_store(dot / DB_FILENAME)
    except BaseException:
        if store is not None:
            store.close()
        raise
    from devtrack.profiles import copy_shipped_profiles, workspace_profiles_dir

    copy_shipped_profiles(workspace_profiles_dir(root))
    return Workspace(root, store), created


def _checked_artifacts(artifacts: str | None) -> Path | None:
    """``init --artifacts``: a bucket URL checked, or the directory it names (None for a
    bucket or no option)."""
    if artifacts is None:
        return None
    if artifacts.startswith("s3://"):
        from devtrack.objectstore import parse_url

        parse_url(artifacts)
        return None
    folder = directory_of(artifacts, "--artifacts")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--artifacts {folder} exists and is not a directory; give a "
                         f"directory shared by every runner (or set ${ARTIFACTS_VARIABLE})")
    return folder
