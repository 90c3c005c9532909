"""The content-addressed artifact store: ``artifacts/sha256/ab/abcdef…``, written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack.errors import DevtrackError
from devtrack.locks import LOCK_SUFFIX

if TYPE_CHECKING:
    from devtrack.objectstore import BucketUrl

CHUNK = 1 << 20
INCOMING_PREFIX = ".incoming-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Files stored under their sha256; the same bytes are stored once.

    Writers share files, so nothing here deletes one on a failed write. Instead every writer
    holds the file's pin (:meth:`hold`, a shared flock on ``.devtrack/locks/<sha256>.lock``)
    from before it copies the file until its row is committed, and ``devtrack gc`` removes a
    file only while it holds that pin exclusively and no row references the file. A lock
    rather than a grace period: a register can sit between its copy and its commit for as
    long as another writer holds the database, and a dead writer's lock is released at once
    by the kernel, so gc neither races a slow writer nor waits for a dead one.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def locks_dir(self) -> Path:
        return self.root.parent / "locks"

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def pin_path(self, sha256: str) -> Path:
        return self.locks_dir / f"{sha256}{LOCK_SUFFIX}"

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    @contextmanager
    def hold(self, sha256: str) -> Iterator[None]:
        """Pin ``sha256`` for the block: gc leaves the file (and its partial copies) alone."""
        from devtrack.locks import shared

        with shared(self.pin_path(sha256)):
            yield

    def put(self, source: Path, sha256: str) -> str:
        """Make the stored copy of ``sha256`` hold ``source``'s bytes; call inside
        :meth:`hold`. Returns "new" (it was absent), "kept" (already intact) or "replaced"
        (the stored bytes had been modified and are restored from ``source``)."""
        dest = self.path_for(sha256)
        if dest.is_file():
            if sha256_file(dest) == sha256:
                return "kept"
            outcome = "replaced"
        else:
            outcome = "new"
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The name carries the sha256 so gc can tell whose pin covers this partial copy.
        fd, tmp_name = tempfile.mkstemp(prefix=f"{INCOMING_PREFIX}{sha256}-", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if sha256_file(tmp) != sha256:
                raise DevtrackError(f"{source} changed while it was being copied; try again")
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return outcome

    def discard(self, path: Path, sha256: str, referenced: Callable[[], bool]) -> bool:
        """Remove ``path`` (the stored file of ``sha256`` or a partial copy of it) unless a
        live writer holds its pin or ``referenced()`` says a row needs it; whether it went.

        ``referenced`` is asked while the pin is held exclusively: a writer commits its row
        before it lets the pin go, so the answer cannot turn stale before the unlink.
        """
        from devtrack.locks import release, try_exclusive

        pin = self.pin_path(sha256)
        fd = try_exclusive(pin)
        if fd is None:
            return False
        try:
            if referenced():
                return False
            path.unlink(missing_ok=True)
            return True
        finally:
            release(fd, pin)

    def materialize(self, sha256: str, what: str | None = None) -> None:
        """Make ``path_for(sha256)`` present where a backend keeps files elsewhere (a no-op
        here: the store is the local folder)."""

    def verify(self, sha256: str, what: str | None = None) -> Path:
        """Return the stored file's path after checking its bytes still hash to ``sha256``
        (``what``, e.g. ``release kws@1.0``, is named by backends whose keys are not paths)."""
        path = self.path_for(sha256)
        if not path.is_file():
            raise DevtrackError(
                f"artifact {sha256[:12]} is missing from the store; restore it by copying the "
                f"original file (sha256 {sha256}) to {path}"
            )
        actual = sha256_file(path)
        if actual != sha256:
            raise DevtrackError(
                f"artifact {sha256[:12]} in the store was modified (now hashes to {actual[:12]}); "
                "refusing to benchmark it"
            )
        return path


class ObjectChangedError(DevtrackError):
    """An object in the remote store no longer holds the bytes its key names: exit 2."""


class RemoteArtifactStore(ArtifactStore):
    """Artifacts in S3-compatible object storage (``DEVTRACK_ARTIFACTS_URL``), content
    addressed as locally; ``root`` is the local cache every file is used from.

    A file is uploaded once (skipped when the object is there with its size and sha256); a
    download streams into the cache under the file's pin, is hashed on the way and used only
    when it hashes to its key, so a changed object is refused, never measured.
    """

    def __init__(self, root: Path, bucket: BucketUrl) -> None:
        super().__init__(root)
        self.bucket = bucket

    def put(self, source: Path, sha256: str) -> str:
        from devtrack import objectstore

        super().put(source, sha256)  # the cache copy, checked; uploaded from there
        found = objectstore.head(self.bucket, sha256)
        size = self.path_for(sha256).stat().st_size
        if found is not None and found["size"] == size and found["sha256"] == sha256:
            return "kept"
        objectstore.upload(self.bucket, self.path_for(sha256), sha256)
        return "new" if found is None else "replaced"

    def has(self, sha256: str) -> bool:
        from devtrack import objectstore

        return super().has(sha256) or objectstore.head(self.bucket, sha256) is not None

    def materialize(self, sha256: str, what: str | None = None) -> None:
        if not self.path_for(sha256).is_file():
            self._download(sha256, what)

    def verify(self, sha256: str, what: str | None = None) -> Path:
        path = self.path_for(sha256)
        if path.is_file() and sha256_file(path) == sha256:
            return path
        self._download(sha256, what)  # absent from the cache, or the cached copy was damaged
        return path

    def _download(self, sha256: str, what: str | None) -> None:
        from devtrack import objectstore

        dest = self.path_for(sha256)
        label = what or f"artifact {sha256[:12]}"
        url = self.bucket.url_for(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.hold(sha256):  # gc leaves the partial download alone
            fd, tmp_name = tempfile.mkstemp(prefix=f"{INCOMING_PREFIX}{sha256}-",
                                            dir=dest.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                received = objectstore.download(self.bucket, sha256, tmp)
                if received is None:
                    raise DevtrackError(
                        f"{label} is missing from the object store: there is no {url}; "
                        "register the original file again to upload it")
                if received != sha256:
                    raise ObjectChangedError(
                        f"{label}: the object {url} changed (its bytes hash to "
                        f"{received[:12]}, not {sha256[:12]}); refusing to use it — remove the "
                        "object and register the original file again to upload it")
                os.chmod(tmp, 0o444)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
