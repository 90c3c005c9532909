"""The one exception tree; the CLI maps it to exit codes in one place."""

from __future__ import annotations

from typing import Any


class DevtrackError(Exception):
    """Base of every error devtrack raises on purpose. ``str()`` is the user's message."""

    exit_code = 2


class UsageError(DevtrackError):
    """Bad input from the user: a malformed spec, an unknown name, a wrong option."""


class WorkspaceError(DevtrackError):
    """No workspace, or one devtrack cannot use (e.g. a database from a newer devtrack)."""


class DatabaseError(DevtrackError):
    """The workspace database failed under a command (a disk error, say); nothing was changed.

    The store raises these in place of its driver's errors, so no other layer needs to know
    which database it talks to.
    """


class DatabaseLockedError(DatabaseError):
    """Another process held the database's write lock for longer than the store waits."""


class DatabaseReadOnlyError(DatabaseError):
    """This user may read the workspace database but not write it."""


class NotFoundError(UsageError):
    """A model, release, profile or dataset that does not exist."""


class DuplicateError(UsageError):
    """Something that must be unique already exists."""


class InvalidModelError(UsageError):
    """A file that is not a valid ONNX or TFLite model."""


class ProfileError(UsageError):
    """A device profile that does not validate."""


class LogFormatError(UsageError):
    """A benchmark_model log devtrack cannot read (a crash, a truncated file, another tool)."""


class RuntimeUnavailableError(DevtrackError):
    """A runtime (onnxruntime, LiteRT) is missing or cannot run the model."""


class ProtocolMismatchError(DevtrackError):
    """A worker job or result of another worker protocol version (``bench/protocol.py``)."""
class DeviceError(DevtrackError):
    """A device could not be reached or used over its link (ssh's own message), or lacks
    what a measurement needs: exit code 1. A bench turns it into a failed run."""

    exit_code = 1


class DeviceUnreachable(DeviceError):
    """The link to a device failed: ssh could not connect or authenticate, or a step got no
    answer in time (as opposed to a device that answered but lacks something)."""


class CheckFailed(DevtrackError):
    """A budget or regression check failed: exit code 1, not a usage error."""

    exit_code = 1


class MeasurementFailed(DevtrackError):
    """A measurement a command depends on failed (the worker's reason): exit code 1."""

    exit_code = 1


class Aborted(DevtrackError):
    """A run was interrupted (Ctrl-C, SIGTERM, SIGHUP, or stopped from the app); ``result``
    holds what was known at that point. Exit code 128 + the signal (130 for Ctrl-C)."""

    exit_code = 130

    def __init__(self, message: str = "aborted", result: dict[str, Any] | None = None,
                 signum: int = 2) -> None:
        super().__init__(message)
        self.result: dict[str, Any] = result if result is not None else {"status": "aborted"}
        self.signum = signum  # 2 = SIGINT
        self.exit_code = 128 + signum
