"""``audit verify``'s look at the bytes: every stored file a row references, rehashed, and
whatever else lies in the artifact store (unreferenced files, leftovers of interrupted writes)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtrack import queries_audit
from devtrack.artifacts import (  # INCOMING_PREFIX: put's temp files, a write not finished
    INCOMING_PREFIX,
    RemoteArtifactStore,
)
from devtrack.workspace import Workspace

CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # (bytes read so far, bytes to read)


@dataclass(frozen=True)
class FileProblem:
    """A referenced stored file that is missing or no longer holds the recorded bytes."""

    path: str  # relative to the workspace root
    sha256: str
    users: tuple[str, ...]  # "release kws@1.0", "dataset digits"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "used_by": list(self.users),
                "message": self.message}


@dataclass(frozen=True)
class StrayFile:
    """A file in the store no row references, or the leftover of an interrupted write."""

    path: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size_bytes": self.size_bytes}


@dataclass
class StoreReport:
    """What the store holds against what the tables reference."""

    quick: bool
    remote: str | None = None  # s3://bucket/prefix when the files are kept there
    deep: bool = False  # remote: the objects' bytes were read
    files: int = 0  # referenced files looked at
    bytes_read: int = 0
    seconds: float = 0.0
    problems: list[FileProblem] = field(default_factory=list)
    unreferenced: list[StrayFile] = field(default_factory=list)
    leftovers: list[StrayFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"quick": self.quick, "remote": self.remote, "deep": self.deep,
                "files": self.files, "bytes_read": self.bytes_read,
                "seconds": round(self.seconds, 3),
                "problems": [p.to_dict() for p in self.problems],
                "unreferenced": [s.to_dict() for s in self.unreferenced],
                "leftovers": [s.to_dict() for s in self.leftovers]}


@dataclass
class _Referenced:
    users: list[str] = field(default_factory=list)
    size_bytes: int | None = None  # as the artifacts table records it


def _shown(path: Path, root: Path) -> str:
    """A stored file's path relative to the workspace, or in full when the store is shared
    (a directory outside it)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _table_exists(ws: Workspace, table: str) -> bool:
    return table in ws.store.table_names()


def referenced_files(ws: Workspace) -> dict[str, _Referenced]:
    """Every sha256 a row names (releases, datasets, the artifacts table), with who uses it."""
    refs: dict[str, _Referenced] = {}
    store = ws.store
    if _table_exists(ws, "artifacts"):
        for sha, size in queries_audit.artifact_sizes(store):
            refs.setdefault(sha, _Referenced()).size_bytes = size
    if _table_exists(ws, "releases") and _table_exists(ws, "models"):
        for sha, ref in queries_audit.release_artifacts(store):
            refs.setdefault(sha, _Referenced()).users.append(f"release {ref}")
    if _table_exists(ws, "datasets"):
        for sha, name in queries_audit.dataset_files(store):
            refs.setdefault(sha, _Referenced()).users.append(f"dataset {name}")
    return refs


def _who(users: list[str]) -> str:
    if not users:
        return "a row of the artifacts table"
    releases = [u.removeprefix("release ") for u in users if u.startswith("release ")]
    others = [u for u in users if not u.startswith("release ")]
    parts = ([f"release{'s' if len(releases) > 1 else ''} {', '.join(releases)}"]
             if releases else []) + others
    return " and ".join(parts)


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _hash(path: Path, done: int, total: int, progress: Progress | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    read = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            read += len(chunk)
            if progress is not None:
                progress(done + read, total)
    return digest.hexdigest(), read


def _check_file(root: Path, path: Path, sha: str, ref: _Referenced, quick: bool,
                hashed: tuple[str, int] | None) -> FileProblem | None:
    where = _shown(path, root)
    users = tuple(ref.users)
    if hashed is None and not path.is_file():
        return FileProblem(where, sha, users, f"stored file {where} of {_who(ref.users)} is "
                           "missing; copy the original file back there (its name is its sha256)")
    size = path.stat().st_size
    if quick and ref.size_bytes is not None and size != ref.size_bytes:
        return FileProblem(where, sha, users, f"stored file {where} of {_who(ref.users)} was "
                           f"modified: it holds {size:,} bytes, {ref.size_bytes:,} were "
                           "registered")
    if hashed is not None and hashed[0] != sha:
        return FileProblem(where, sha, users, f"stored file {where} of {_who(ref.users)} was "
                           f"modified: it hashes to {hashed[0][:12]}, not {sha[:12]}")
    return None


def _strays(root: Path, store_root: Path, referenced: set[Path]) -> tuple[list[StrayFile],
                                                                         list[StrayFile]]:
    unreferenced: list[StrayFile] = []
    leftovers: list[StrayFile] = []
    if not store_root.is_dir():
        return unreferenced, leftovers
    for path in sorted(store_root.rglob("*")):
        if not path.is_file() or path in referenced:
            continue
        try:
            size = path.stat().st_size
        except OSError:  # a concurrent writer renamed or removed it just now
            continue
        stray = StrayFile(_shown(path, root), size)
        (leftovers if path.name.startswith(INCOMING_PREFIX) else unreferenced).append(stray)
    return unreferenced, leftovers


def _audit_remote(ws: Workspace, store: RemoteArtifactStore, deep: bool,
                  progress: Progress | None) -> StoreReport:
    """Every referenced object in the bucket with its registered size (``deep``: its bytes
    read and hashed too, nothing written)."""
    from devtrack import objectstore

    started = time.perf_counter()
    bucket = store.bucket
    report = StoreReport(quick=not deep, remote=f"s3://{bucket.cache_name}", deep=deep)
    refs = referenced_files(ws)
    total = sum(ref.size_bytes or 0 for ref in refs.values()) if deep else 0

    def count(size: int) -> None:
        report.bytes_read += size
        if progress is not None:
            progress(report.bytes_read, total)

    for sha, ref in sorted(refs.items()):
        users = tuple(ref.users)
        if not _is_sha256(sha):
            report.problems.append(FileProblem(
                "", sha, users, f"{_who(ref.users)} names no stored file: {sha[:70]!r} is not "
                "a sha256; the row was edited outside devtrack"))
            continue
        url = bucket.url_for(sha)
        report.files += 1
        found = objectstore.head(bucket, sha)
        message = None
        if found is None:
            message = (f"object {url} of {_who(ref.users)} is missing; register the original "
                       "file again to upload it")
        elif ref.size_bytes is not None and found["size"] != ref.size_bytes:
            message = (f"object {url} of {_who(ref.users)} was modified: it holds "
                       f"{found['size']:,} bytes, {ref.size_bytes:,} were registered")
        elif deep:
            actual = objectstore.digest(bucket, sha, count)
            if actual != sha:
                message = (f"object {url} of {_who(ref.users)} was modified: it hashes to "
                           f"{str(actual)[:12]}, not {sha[:12]}")
        if message is not None:
            report.problems.append(FileProblem(url, sha, users, message))
    report.seconds = time.perf_counter() - started
    return report


def audit_store(ws: Workspace, quick: bool = False, progress: Progress | None = None,
                deep: bool = False) -> StoreReport:
    """Rehash every stored file a row references (``quick``: only check it is there with the
    registered size), then list the store's other files and leftovers of interrupted writes.
    In object storage: each object's size (``deep``: its bytes)."""
    artifacts = ws.artifacts
    if isinstance(artifacts, RemoteArtifactStore):
        return _audit_remote(ws, artifacts, deep and not quick, progress)
    started = time.perf_counter()
    report = StoreReport(quick)
    root = ws.root
    refs = referenced_files(ws)
    paths = {sha: artifacts.path_for(sha) for sha in refs}
    sizes = {sha: p.stat().st_size for sha, p in paths.items()
             if _is_sha256(sha) and p.is_file()}
    total = 0 if quick else sum(sizes.values())
    for sha, ref in sorted(refs.items(), key=lambda item: str(paths[item[0]])):
        path = paths[sha]
        if not _is_sha256(sha):  # a hand-edited row: never read outside the store
            report.problems.append(FileProblem(
                "", sha, tuple(ref.users), f"{_who(ref.users)} names no stored file: "
                f"{sha[:70]!r} is not a sha256; the row was edited outside devtrack"))
            continue
        hashed = None
        if not quick and sha in sizes:
            try:
                hashed = _hash(path, report.bytes_read, total, progress)
            except FileNotFoundError:
                hashed = None
            except PermissionError:
                report.problems.append(FileProblem(
                    _shown(path, root), sha, tuple(ref.users),
                    f"stored file {_shown(path, root)} of {_who(ref.users)} cannot be "
                    "read by this user; check its permissions"))
                continue
            else:
                report.bytes_read += hashed[1]
        report.files += 1
        problem = _check_file(root, path, sha, ref, quick, hashed)
        if problem is not None:
            report.problems.append(problem)
    report.unreferenced, report.leftovers = _strays(root, artifacts.root, set(paths.values()))
    report.seconds = time.perf_counter() - started
    return report
