"""Leftovers of interrupted writes (partial copies, bench temp folders, unreferenced stored
files): find them, and remove those that no live process owns (``devtrack gc``).

Ownership is read from flocks (see devtrack.locks), which the kernel drops when a process
dies, so gc is safe while other devtrack processes run: a stored file or partial copy is
removed only while gc holds its pin exclusively (a writer holds it shared from before its
copy until its row is committed), and a bench temp folder only while gc holds its lock file.
Folders and partial copies made by an older devtrack carry no lock; they are removed once
they are older than :data:`UNLOCKED_GRACE_S`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtrack import queries
from devtrack.artifacts import INCOMING_PREFIX, ArtifactStore
from devtrack.locks import LOCK_SUFFIX, is_held, release, run_folder_lock, try_exclusive
from devtrack.workspace import Workspace

RUN_FOLDER_PREFIX = "devtrack-run-"
UNLOCKED_GRACE_S = 3600.0
PARTIAL_COPY = "partial_copy"  # .incoming-* in the store: a copy a killed writer left
UNREFERENCED = "unreferenced_file"  # a stored file no release or dataset references
RUN_FOLDER = "run_folder"  # devtrack-run-* in the temp folder: a killed bench's scratch
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Leftover:
    """A file or folder an interrupted write left behind; ``in_use`` when a live process
    owns it now (gc leaves those)."""

    kind: str
    path: Path
    files: int
    size_bytes: int
    in_use: bool
    sha256: str | None = None  # of the stored file a partial copy or unreferenced file is

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "files": self.files,
                "size_bytes": self.size_bytes, "in_use": self.in_use, "sha256": self.sha256}


@dataclass
class GcResult:
    """What ``devtrack gc`` removed (or would remove, on a dry run) and what it left in use."""

    dry_run: bool
    removed: list[Leftover] = field(default_factory=list)
    in_use: list[Leftover] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(x.files for x in self.removed)

    @property
    def size_bytes(self) -> int:
        return sum(x.size_bytes for x in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "files": self.files, "size_bytes": self.size_bytes,
                "removed": [x.to_dict() for x in self.removed],
                "in_use": [x.to_dict() for x in self.in_use]}


def _size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path`` (a file or a folder); what is gone counts as nothing."""
    try:
        if not path.is_dir():
            return 1, path.stat().st_size
    except OSError:
        return 0, 0
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += (Path(dirpath) / name).stat().st_size
                files += 1
            except OSError:
                pass
    return files, size


def _old(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > UNLOCKED_GRACE_S
    except OSError:
        return False


def referenced_hashes(ws: Workspace) -> set[str]:
    """Every sha256 a row refers to: artifacts, releases and datasets."""
    return queries.referenced_hashes(ws.store)


def _incoming_sha(name: str) -> str | None:
    rest = name[len(INCOMING_PREFIX):]
    return rest[:64] if _SHA256.fullmatch(rest[:64]) and rest[64:65] == "-" else None


def _store_leftovers(ws: Workspace, store: ArtifactStore) -> list[Leftover]:
    referenced = referenced_hashes(ws)
    found = []
    for path in sorted(store.root.glob("sha256/*/*")):
        name = path.name
        if name.startswith(INCOMING_PREFIX):
            sha = _incoming_sha(name)
            in_use = is_held(store.pin_path(sha)) if sha else not _old(path)
            found.append(Leftover(PARTIAL_COPY, path, *_size(path), in_use, sha))
        elif _SHA256.fullmatch(name) and name not in referenced:
            found.append(Leftover(UNREFERENCED, path, *_size(path),
                                  is_held(store.pin_path(name)), name))
    return found


def _run_folder_leftovers(temp_dir: Path) -> list[Leftover]:
    found = []
    uid = os.getuid()
    for path in sorted(temp_dir.glob(f"{RUN_FOLDER_PREFIX}*")):
        try:
            if path.stat().st_uid != uid:
                continue
        except OSError:
            continue
        if path.name.endswith(LOCK_SUFFIX):
            folder = path.with_name(path.name[: -len(LOCK_SUFFIX)])
            if not folder.exists():  # the folder is gone, its lock file was left
                found.append(Leftover(RUN_FOLDER, path, *_size(path), is_held(path)))
            continue
        if not path.is_dir():
            continue
        lock = run_folder_lock(path)
        in_use = is_held(lock) if lock.exists() else not _old(path)
        files, size = _size(path)
        found.append(Leftover(RUN_FOLDER, path, files + int(lock.exists()), size, in_use))
    return found


def find_leftovers(ws: Workspace, temp_dir: Path | None = None) -> list[Leftover]:
    """Partial copies and unreferenced files in the workspace's store, and bench temp folders
    (of this user, in ``temp_dir``, by default the system's), each marked in use or not.
    Reads only."""
    base = temp_dir if temp_dir is not None else Path(tempfile.gettempdir())
    return _store_leftovers(ws, ws.artifacts) + _run_folder_leftovers(base)


def _remove_stored(ws: Workspace, store: ArtifactStore, item: Leftover) -> bool:
    """Remove a partial copy or unreferenced file while holding its pin exclusively (a
    writer between its copy and its commit holds it shared)."""
    if item.sha256 is None:  # a partial copy by an older devtrack: no pin to ask
        if not _old(item.path):
            return False
        item.path.unlink(missing_ok=True)
        return True
    sha = item.sha256
    if item.kind == PARTIAL_COPY:  # nobody needs a partial copy once its writer is gone
        return store.discard(item.path, sha, lambda: False)
    return store.discard(item.path, sha, lambda: ws.store.references_file(sha))


def _remove_run_folder(item: Leftover) -> bool:
    path = item.path
    if path.name.endswith(LOCK_SUFFIX):
        lock, folder = path, None
    else:
        lock, folder = run_folder_lock(path), path
    if not lock.exists():
        if folder is None or not _old(folder):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True
    fd = try_exclusive(lock, create=False)
    if fd is None:
        return False
    try:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def _remove_idle_pins(store: ArtifactStore) -> None:
    """Pin files nobody holds are bookkeeping only: tidy them away."""
    for pin in store.locks_dir.glob(f"*{LOCK_SUFFIX}"):
        fd = try_exclusive(pin, create=False)
        if fd is not None:
            release(fd, pin)


def collect_garbage(ws: Workspace, dry_run: bool = False,
                    temp_dir: Path | None = None) -> GcResult:
    """Remove every leftover no live process owns (on a dry run, only list them)."""
    result = GcResult(dry_run)
    store = ws.artifacts
    for item in find_leftovers(ws, temp_dir):
        if item.in_use:
            result.in_use.append(item)
            continue
        if dry_run:
            result.removed.append(item)
            continue
        done = (_remove_run_folder(item) if item.kind == RUN_FOLDER
                else _remove_stored(ws, store, item))
        (result.removed if done else result.in_use).append(item)
    if not dry_run:
        _remove_idle_pins(store)
    return result
