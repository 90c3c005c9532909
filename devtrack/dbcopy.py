"""``devtrack db copy``: every row of a SQLite workspace into an empty PostgreSQL database, ids
kept, in one transaction, the audit chain verified on the copy before it commits. The tables
and columns are the records' (records.py), checked against both databases' schemas."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from devtrack.errors import DatabaseError, UsageError, WorkspaceError

if TYPE_CHECKING:
    from devtrack.store_contract import TableShape
    from devtrack.workspace import Workspace

CopyProgress = Callable[[str, int, int], None]
"""Called as rows are written: (table, its rows written so far, its rows in all)."""

PROGRESS_EVERY = 256  # rows between two progress calls


@dataclass
class CopyResult:
    """What :func:`copy_database` wrote."""

    target: str  # the URL, password masked
    rows: dict[str, int]  # table -> rows copied, in the order they were written
    seconds: float
    events_verified: int  # events whose chain verified on the copy

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "rows": self.rows, "total_rows": self.total_rows,
                "seconds": round(self.seconds, 3), "events_verified": self.events_verified}


def copy_order(shapes: dict[str, TableShape]) -> list[str]:
    """The tables in an order that writes every row after the rows it references (by name
    among tables whose references are all written; a table's references to itself, such as
    a release's parent, are kept by writing its rows in key order)."""
    order: list[str] = []
    left = dict(shapes)
    while left:
        ready = sorted(name for name, shape in left.items()
                       if shape.references - {name} <= set(order))
        if not ready:
            raise DatabaseError("the workspace's tables reference each other in a cycle ("
                                f"{', '.join(sorted(left))}); db copy cannot order them")
        order += ready
        for name in ready:
            del left[name]
    return order


def _check_schema(found: dict[str, TableShape], where: str) -> None:
    """The database has devtrack's tables with the columns of their records (records.py)."""
    from devtrack.records import TABLES, table_columns

    problems = [f"{name} missing" for name in sorted(set(TABLES) - set(found))]
    problems += [f"{name} is not devtrack's" for name in sorted(set(found) - set(TABLES))]
    for name in sorted(set(TABLES) & set(found)):
        differ = set(table_columns(name)) ^ set(found[name].columns)
        if differ:
            problems.append(f"{name} columns differ: {', '.join(sorted(differ))}")
    if problems:
        raise DatabaseError(f"the schema of {where} is not the one this devtrack copies "
                            f"({'; '.join(problems)}); nothing was copied")


def _refuse_non_empty(held: dict[str, int], where: str) -> None:
    if held:
        listed = ", ".join(f"{name} {count:,}" for name, count in held.items())
        raise UsageError(f"{where} is not empty (rows: {listed}); db copy writes only into an "
                         "empty database — create a new one (createdb) and copy into that; "
                         "nothing was written")


def _reported(rows: Iterable[tuple[Any, ...]], table: str, total: int,
              progress: CopyProgress | None) -> Iterator[tuple[Any, ...]]:
    done = 0
    for row in rows:
        yield row
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(table, done, total)
    if progress is not None:
        progress(table, done, total)


def copy_database(ws: Workspace, url: str, progress: CopyProgress | None = None) -> CopyResult:
    """Copy every table of the workspace's SQLite database into the empty PostgreSQL database
    at ``url`` (a libpq URL without a password), ids kept, identity sequences advanced past
    them. One transaction under the target's write lock: a failure or a kill leaves the target
    as it was. Refused, with nothing written: a URL with a password (UsageError), a target that
    holds any row (UsageError), a copy whose audit chain does not verify (DatabaseError)."""
    from devtrack.core.database_url import mask_password, refuse_stored_password
    from devtrack.records import table_columns
    from devtrack.store import Store

    refuse_stored_password(url)
    where = mask_password(url)
    source = ws.store
    if not isinstance(source, Store):
        raise UsageError("this workspace's database is not a SQLite file; db copy copies a "
                         "SQLite workspace into PostgreSQL")
    from devtrack.postgres.backend import open_postgres_store

    started = time.perf_counter()
    target = open_postgres_store(url)
    try:
        with source.read_snapshot():
            shapes = source.tables()
            _check_schema(shapes, "the workspace")
            _check_schema(target.tables(), where)
            order = copy_order(shapes)
            counts = {name: source.count_rows(name) for name in order}
            with target.transaction():
                _refuse_non_empty({name: n for name in order
                                   if (n := target.count_rows(name))}, where)
                for name in order:
                    shape = replace(shapes[name], columns=table_columns(name))
                    rows = _reported(source.stream_rows(name, shape), name, counts[name],
                                     progress)
                    written = target.copy_rows(name, shape.columns, rows)
                    if written != counts[name]:
                        raise DatabaseError(f"{name}: read {written} rows of {counts[name]} "
                                            "from the workspace; nothing was copied")
                target.advance_identities()
                problem = target.verify_events()
                if problem is not None:
                    raise WorkspaceError(
                        f"the audit trail does not verify on the copy ({problem.message}); "
                        "nothing was written — run 'devtrack audit verify' on this workspace")
                events = counts.get("events", 0)
    finally:
        target.close()
    return CopyResult(where, counts, time.perf_counter() - started, events)
