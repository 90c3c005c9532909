"""The one place psycopg's errors become devtrack's ``DatabaseError`` family, password-free."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from devtrack.core.database_url import MASK, mask_password, parse_database_url
from devtrack.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DevtrackError,
    UsageError,
)

if TYPE_CHECKING:
    import psycopg

_AUTHENTICATION = ("28000", "28P01")
_NO_DATABASE = "3D000"
_LOCKED = ("55P03", "40001", "40P01")  # lock_timeout, serialization failure, deadlock
_INTEGRITY = "23"  # class 23: a unique, foreign-key, not-null or check constraint
_READ_ONLY = ("42501", "25006")  # insufficient privilege, read-only transaction (a standby)


def _secrets(url: str) -> list[str]:
    found = [os.environ.get("PGPASSWORD") or ""]
    try:
        parsed = parse_database_url(url)
    except UsageError:
        return [s for s in found if s]
    found += [parsed.password or "", parsed.params.get("password", "")]
    return [s for s in found if s]


def one_line(text: str, url: str) -> str:
    """The first line of a driver message, with every password this URL may carry masked."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else "no message"
    for secret in _secrets(url):
        line = line.replace(secret, MASK)
    return line


def database_error(exc: psycopg.Error, url: str) -> DatabaseError:
    """The devtrack error a psycopg failure on ``url``'s database becomes."""
    import psycopg

    where = mask_password(url)
    state = getattr(exc, "sqlstate", None) or ""
    detail = one_line(str(exc), url)
    if (state in _AUTHENTICATION or "authentication failed" in detail
            or "no password supplied" in detail):
        return DatabaseError(
            f"PostgreSQL refused the credentials for {where} ({detail}); nothing was changed — "
            "check the user name and the password in PGPASSWORD, ~/.pgpass or the service file")
    if state == _NO_DATABASE or ("database" in detail and "does not exist" in detail):
        return DatabaseError(f"the database of {where} does not exist on that server "
                             f"({detail}); create it first (createdb), nothing was changed")
    if state in _LOCKED:
        return DatabaseLockedError(
            "the PostgreSQL database is busy with another devtrack writer; try again when it "
            f"has finished (nothing was changed; {detail})")
    if state in _READ_ONLY:
        return DatabaseReadOnlyError(
            f"this user may not write to {where} ({detail}); this command needs to write to "
            "it (nothing was changed)")
    if state.startswith(_INTEGRITY):
        return DatabaseError(f"the PostgreSQL database {where} refused the change ({detail}); "
                             "nothing was changed")
    if isinstance(exc, psycopg.OperationalError) and not state:
        return DatabaseError(f"cannot reach the PostgreSQL server of {where}: {detail}")
    return DatabaseError(f"the PostgreSQL database {where} failed: {detail}")


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Raise :func:`database_error` for a psycopg failure inside the block."""
    import psycopg

    try:
        yield
    except DevtrackError:
        raise
    except psycopg.Error as exc:
        raise database_error(exc, url) from None
