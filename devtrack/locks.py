"""Advisory file locks (flock) that mark what a live process owns: stored files, run folders.

A lock held through ``flock`` is released by the kernel when its holder dies, even by
``kill -9``; a lock file that nobody holds therefore means its owner is gone, which is how
``devtrack gc`` tells a leftover from a file another process is still writing. Holders may
remove a lock file (only while holding it exclusively), so every acquisition checks that the
file it locked is still the one at the path, and retries otherwise.

Windows has no flock: there nothing is pinned and every lock counts as held, so gc removes
nothing it cannot prove dead (which is nothing).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform != "win32":
    import fcntl

LOCK_SUFFIX = ".lock"


def _still_there(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a remover did not unlink it)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _acquire(path: Path, operation: int, create: bool = True) -> int | None:
    """An fd of ``path`` locked with ``operation``; None when a non-blocking lock is taken by
    another process (or the file is absent and ``create`` is False)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _still_there(fd, path):
            return fd
        os.close(fd)  # removed while we waited: lock the file that is there now
        if not create:
            return None


def release(fd: int, path: Path) -> None:
    """Drop a lock; remove its file too when no other process holds it (tidy, not required)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    else:
        if _still_there(fd, path):
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextmanager
def shared(path: Path) -> Iterator[None]:
    """Hold ``path`` shared for the block (several holders at once; waits for an exclusive
    holder, which only ever holds it briefly)."""
    if sys.platform == "win32":
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, fcntl.LOCK_SH)
    assert fd is not None
    try:
        yield
    finally:
        release(fd, path)


def try_exclusive(path: Path, create: bool = True) -> int | None:
    """Lock ``path`` exclusively without waiting: the fd, or None when a live process holds
    it. Give the fd to :func:`release` when done."""
    if sys.platform == "win32":
        return None
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return _acquire(path, fcntl.LOCK_EX | fcntl.LOCK_NB, create=create)


def is_held(path: Path) -> bool:
    """Whether a live process holds a lock on ``path`` now (a missing file: nobody)."""
    if sys.platform == "win32":
        return True
    fd = try_exclusive(path, create=False)
    if fd is None:
        return path.exists()
    os.close(fd)
    return False


def run_folder_lock(folder: Path) -> Path:
    """The lock file that marks ``folder`` (a bench run's temp folder) as owned."""
    return folder.with_name(folder.name + LOCK_SUFFIX)


@contextmanager
def owned_temp_dir(prefix: str) -> Iterator[Path]:
    """A temp folder removed at the end, owned meanwhile through a sibling lock file
    ``<folder>.lock`` held exclusively (inherited by no child: subprocesses close it).

    The lock file is made and locked before the folder exists and removed after it is gone,
    so a folder without a held lock is a leftover of a killed process: ``devtrack gc``
    removes it.
    """
    if sys.platform == "win32":
        with tempfile.TemporaryDirectory(prefix=prefix) as plain:
            yield Path(plain)
        return
    base = Path(tempfile.gettempdir())
    while True:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=LOCK_SUFFIX, dir=base)
        lock = Path(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _still_there(fd, lock):  # a gc between mkstemp and flock could have removed it
            break
        os.close(fd)
    folder = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
    try:
        folder.mkdir(mode=0o700)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
