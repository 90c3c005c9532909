"""Automatic provenance: git commit and dirty flag, user, host, devtrack version."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtrack import __version__


@dataclass(frozen=True)
class GitState:
    commit: str | None
    dirty: bool | None


def git_state(cwd: Path) -> GitState:
    """The commit checked out in ``cwd`` and whether its tree has changes (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return GitState(None, None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitState(commit, bool(status) if status is not None else None)


def current_user() -> str:
    for var in ("DEVTRACK_USER", "GITHUB_ACTOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # getuser raises a variety of errors when no name is known
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def current_host() -> str:
    return socket.gethostname() or "unknown"


def devtrack_version() -> str:
    return __version__
