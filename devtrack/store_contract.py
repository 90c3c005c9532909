"""What the library may ask of a database backend (SQLite's ``store.Store``, PostgreSQL's
``postgres.backend.PostgresStore``), and what the backends share: the chained event record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from devtrack.core.audit import ChainProblem

Params = tuple[Any, ...] | dict[str, Any]


@dataclass(frozen=True)
class TableShape:
    """One table as a database really has it: its columns in order, the columns of its
    primary key (rows are read in that order) and the tables its foreign keys point at."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    references: frozenset[str]


@runtime_checkable
class StoreBackend(Protocol):
    """The interface library modules use on ``ws.store``; ``store.Store`` satisfies it as it
    is. SQL is SQLite's dialect with ``?`` placeholders; a backend translates it."""

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None: ...

    def iterate(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """The rows of a query one at a time, for reads too big to hold at once (samples);
        other queries may run while it is consumed."""
        ...

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT, UPDATE or DELETE; the number of rows it changed."""
        ...

    def table_names(self) -> set[str]:
        """devtrack's tables the database has (one dropped by hand is missing)."""
        ...

    def references_file(self, sha256: str) -> bool:
        """Whether a row (artifact, release or dataset) needs the stored file ``sha256``."""
        ...

    def insert(self, table: str, row: dict[str, Any]) -> int: ...

    def meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def append_event(self, *, actor: str, kind: str, model: str | None, version: str | None,
                     payload: dict[str, Any], reason: str | None = None,
                     ts: str | None = None) -> dict[str, Any]: ...

    def events(self, model: str | None = None, kind: str | None = None,
               newest_first: bool = False, limit: int | None = None) -> list[dict[str, Any]]: ...

    def verify_events(self) -> ChainProblem | None: ...

    def tables(self) -> dict[str, TableShape]: ...

    def count_rows(self, table: str) -> int: ...

    def close(self) -> None: ...

    @property
    def location(self) -> str:
        """Where the database is, for people (a path, or a URL with its password masked)."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (each backend numbers its own)."""
        ...

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...


REFERENCES_FILE_SQL = (
    "SELECT 1 AS x FROM artifacts WHERE sha256 = ? UNION SELECT 1 FROM releases "
    "WHERE artifact_sha256 = ? UNION SELECT 1 FROM datasets WHERE sha256 = ?")
"""Whether a row (artifact, release or dataset) needs a stored file: both backends ask it."""


def utc_now() -> str:
    """The timestamp format every stored ``*_at`` and ``ts`` uses (digests depend on it)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_chained_event(store: StoreBackend, *, actor: str, kind: str, model: str | None,
                         version: str | None, payload: dict[str, Any], reason: str | None,
                         ts: str | None) -> dict[str, Any]:
    """Insert the next event of the chain and record the new head: both backends'
    ``append_event`` (each under its own write lock), so they build one chain."""
    last = store.one("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
    event = chained_event(last, actor=actor, kind=kind, model=model, version=version,
                          payload=payload, reason=reason, ts=ts)
    store.insert("events", event)
    store.set_meta("events_head", json.dumps([event["id"], event["hash"]]))
    return event


def verify_event_chain(store: StoreBackend) -> ChainProblem | None:
    """The first problem in the store's event chain (against its recorded head), or None."""
    from devtrack.core.audit import verify_chain

    return verify_chain(store.events(), events_head(store.meta("events_head")))


def chained_event(last: dict[str, Any] | None, *, actor: str, kind: str, model: str | None,
                  version: str | None, payload: dict[str, Any], reason: str | None,
                  ts: str | None) -> dict[str, Any]:
    """The next event after ``last`` (its ``id`` and ``hash``; None for the first)."""
    from devtrack.core.audit import GENESIS_HASH, event_hash

    prev_hash = last["hash"] if last else GENESIS_HASH
    event: dict[str, Any] = {
        "id": (int(last["id"]) + 1) if last else 1,
        "ts": ts or utc_now(),
        "actor": actor,
        "kind": kind,
        "model": model,
        "version": version,
        "payload": json.dumps(payload, sort_keys=True, ensure_ascii=False),
        "reason": reason,
        "prev_hash": prev_hash,
    }
    event["hash"] = event_hash(prev_hash, event)
    return event


def events_query(model: str | None, kind: str | None, newest_first: bool,
                 limit: int | None) -> tuple[str, tuple[Any, ...]]:
    """The SQL (SQLite dialect, which both backends take) behind ``events()``."""
    clauses, params = [], []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if newest_first else "ASC"
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return f"SELECT * FROM events {where} ORDER BY id {order}{tail}", tuple(params)


def events_head(text: str | None) -> tuple[int, str]:
    """The chain head recorded in meta ``events_head`` (``[id, hash]``), or the genesis."""
    from devtrack.core.audit import GENESIS_HASH

    head = json.loads(text) if text else (0, GENESIS_HASH)
    return int(head[0]), str(head[1])

