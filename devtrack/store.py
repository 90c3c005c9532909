"""The one module that owns the SQLite database: schema, migrations, queries, events."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtrack.errors import WorkspaceError

if TYPE_CHECKING:
    import sqlite_utils

    from devtrack.core.audit import ChainProblem

# devtrack.core.audit (hashlib) is imported where events are written or verified: read-only
# commands such as `devtrack releases` start faster without it.

DB_FILENAME = "devtrack.db"
BUSY_TIMEOUT_MS = 10_000


def _migration_1(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            task TEXT NOT NULL DEFAULT 'other',
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE artifacts (
            sha256 TEXT PRIMARY KEY,
            format TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE releases (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id),
            version TEXT NOT NULL,
            artifact_sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
            parent_id INTEGER REFERENCES releases(id),
            status TEXT NOT NULL DEFAULT 'candidate',
            notes TEXT NOT NULL DEFAULT '',
            data_version TEXT,
            data_sha256 TEXT,
            config TEXT,
            run_id TEXT,
            tags TEXT NOT NULL DEFAULT '{}',
            input_specs TEXT NOT NULL DEFAULT '[]',
            fills TEXT NOT NULL DEFAULT '[]',
            source_name TEXT,
            git_commit TEXT,
            git_dirty INTEGER,
            created_by TEXT NOT NULL,
            host TEXT NOT NULL,
            created_at TEXT NOT NULL,
            devtrack_version TEXT NOT NULL,
            summary TEXT NOT NULL,
            UNIQUE (model_id, version)
        )"""
    )
    db.execute("CREATE INDEX idx_releases_artifact ON releases(artifact_sha256)")
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT,
            version TEXT,
            payload TEXT NOT NULL,
            reason TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_events_model ON events(model)")


def _migration_2(db: sqlite_utils.Database) -> None:
    """Benchmark runs: one row per (release, profile) measurement, samples as a blob."""
    db.execute(
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            release_id INTEGER NOT NULL REFERENCES releases(id),
            profile TEXT NOT NULL,
            profile_hash TEXT NOT NULL,
            profile_snapshot TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            host TEXT NOT NULL,
            runtime TEXT,
            runtime_version TEXT,
            import_ms REAL, init_ms REAL, first_ms REAL, warmup_ms REAL,
            n INTEGER,
            p50_ms REAL, p90_ms REAL, p95_ms REAL, p99_ms REAL,
            mean_ms REAL, std_ms REAL, min_ms REAL, max_ms REAL, cv REAL,
            ci_low_ms REAL, ci_high_ms REAL,
            stop_reason TEXT,
            baseline_rss_mb REAL, load_peak_mb REAL, load_delta_mb REAL,
            inference_peak_mb REAL, peak_rss_mb REAL, memory_method TEXT,
            samples BLOB,
            inputs TEXT,
            environment TEXT,
            warnings TEXT NOT NULL DEFAULT '[]',
            op_profile TEXT,
            details TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_runs_release_profile ON runs(release_id, profile)")


def _migration_3(db: sqlite_utils.Database) -> None:
    """Review: evaluation datasets, accuracy per run, checks, comparisons, deployments."""
    db.execute(
        """CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            task TEXT NOT NULL,
            samples INTEGER NOT NULL,
            arrays TEXT NOT NULL,
            has_labels INTEGER NOT NULL,
            source_name TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        )"""
    )
    db.execute("ALTER TABLE models ADD COLUMN default_dataset TEXT")
    db.execute(
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            dataset_id INTEGER NOT NULL REFERENCES datasets(id),
            task TEXT NOT NULL,
            metrics TEXT NOT NULL,
            accuracy REAL,
            predictions BLOB,
            reference_release_id INTEGER REFERENCES releases(id),
            fidelity TEXT,
            nonfinite INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_evaluations_run ON evaluations(run_id)")
    db.execute(
        """CREATE TABLE comparisons (
            id INTEGER PRIMARY KEY,
            baseline_release_id INTEGER NOT NULL REFERENCES releases(id),
            candidate_release_id INTEGER NOT NULL REFERENCES releases(id),
            profile TEXT NOT NULL,
            profile_hash TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            ratio REAL,
            ci_low REAL,
            ci_high REAL,
            verdict TEXT,
            ratios BLOB,
            details TEXT,
            created_at TEXT NOT NULL,
            actor TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE checks (
            id INTEGER PRIMARY KEY,
            release_id INTEGER NOT NULL REFERENCES releases(id),
            baseline_release_id INTEGER REFERENCES releases(id),
            profile TEXT NOT NULL,
            profile_hash TEXT NOT NULL,
            passed INTEGER NOT NULL,
            report TEXT NOT NULL,
            created_at TEXT NOT NULL,
            actor TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_checks_release ON checks(release_id, profile)")
    db.execute(
        """CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id),
            release_id INTEGER NOT NULL REFERENCES releases(id),
            profile TEXT NOT NULL,
            kind TEXT NOT NULL,
            deployed_at TEXT NOT NULL,
            deployed_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            replaced_release_id INTEGER REFERENCES releases(id),
            forced INTEGER NOT NULL DEFAULT 0,
            check_id INTEGER REFERENCES checks(id),
            ended_at TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_deployments_model ON deployments(model_id, profile)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1, _migration_2, _migration_3,
]
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


class Store:
    """An open workspace database. Create with :func:`open_store` or :func:`create_store`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._db: sqlite_utils.Database | None = None
        # How long the last transaction waited for the write lock (benchmarks/concurrency.py).
        self.last_lock_wait_s = 0.0

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils' view of the same connection (imported on first use: it is slow to
        import, and reads on the start-up path go through plain sqlite3)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all.

        It takes the write lock at once (BEGIN IMMEDIATE), so what is read inside decides
        what is written: a check-then-insert here cannot race another writer. A lock held
        longer than the busy timeout raises sqlite3.OperationalError "database is locked",
        which the CLI reports on one line.
        """
        started = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.last_lock_wait_s = time.perf_counter() - started
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    # -- queries --------------------------------------------------------------------------

    def query(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [col[0] for col in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def references_file(self, sha256: str) -> bool:
        """Whether a row (artifact, release or dataset) needs the stored file ``sha256``."""
        return self.one(
            "SELECT 1 AS x FROM artifacts WHERE sha256 = ? UNION SELECT 1 FROM releases "
            "WHERE artifact_sha256 = ? UNION SELECT 1 FROM datasets WHERE sha256 = ?",
            (sha256, sha256, sha256)) is not None

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def insert(self, table: str, row: dict[str, Any]) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values())
        )
        return int(cursor.lastrowid or 0)

    # -- audit trail ----------------------------------------------------------------------

    def append_event(
        self,
        *,
        actor: str,
        kind: str,
        model: str | None,
        version: str | None,
        payload: dict[str, Any],
        reason: str | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        """Append one chained event. Call inside :meth:`transaction`."""
        last = self.one("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")
        from devtrack.core.audit import GENESIS_HASH, event_hash

        prev_hash = last["hash"] if last else GENESIS_HASH
        event: dict[str, Any] = {
            "id": (last["id"] + 1) if last else 1,
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
        self.insert("events", event)
        self.set_meta("events_head", json.dumps([event["id"], event["hash"]]))
        return event

    def events(self, model: str | None = None, kind: str | None = None,
               newest_first: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Audit events in id order (or newest first), optionally of one model and kind."""
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
        return self.query(f"SELECT * FROM events {where} ORDER BY id {order}{tail}",
                          tuple(params))

    def verify_events(self) -> ChainProblem | None:
        head_text = self.meta("events_head")
        from devtrack.core.audit import GENESIS_HASH, verify_chain

        head = tuple(json.loads(head_text)) if head_text else (0, GENESIS_HASH)
        return verify_chain(self.events(), (int(head[0]), str(head[1])))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _migrate(conn: sqlite3.Connection, current: int) -> None:
    import sqlite_utils

    store_db = sqlite_utils.Database(conn)
    for number in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[number](store_db)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def open_store(path: Path) -> Store:
    """Open an existing database, upgrading an older schema; refuse a newer one untouched."""
    if not path.is_file():
        raise WorkspaceError(
            f"no devtrack database at {path}; run 'devtrack init' to create a workspace"
        )
    if path.stat().st_size == 0:
        raise WorkspaceError(
            f"{path} is empty: the workspace database was lost or truncated; restore it from "
            "a backup (the artifacts in .devtrack/artifacts are intact)"
        )
    try:
        conn = _connect(path)
        version = _schema_version(conn)
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            return _open_read_only(path)
        raise WorkspaceError(f"{path} is not a usable devtrack database ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"{path} is not a usable devtrack database ({exc})") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise WorkspaceError(
            f"{path} was written by a newer devtrack (schema {version}; this devtrack knows up "
            f"to {SCHEMA_VERSION}); upgrade devtrack with 'pip install -U devtrack' — the "
            "database was not modified"
        )
    if tables == 0:
        conn.close()
        raise WorkspaceError(f"{path} holds no devtrack tables; it is not a devtrack database "
                             "(or it was damaged); restore it from a backup")
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
        conn.close()
        return _open_read_only(path)
    conn.execute("PRAGMA foreign_keys = ON")
    if version < SCHEMA_VERSION:
        _migrate(conn, version)
    return Store(conn, path)


def _open_read_only(path: Path) -> Store:
    """A workspace this user cannot write (a shared copy): reads work, writes fail cleanly.

    A WAL database needs its -shm file to be read; when that cannot be created either, the
    file is opened as immutable (nobody can be writing it through this user anyway).
    """
    for params in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{params}", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            version = _schema_version(conn)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            continue
        if version != SCHEMA_VERSION:
            conn.close()
            raise WorkspaceError(f"{path} is at schema {version}, this devtrack needs "
                                 f"{SCHEMA_VERSION}, and this user cannot write it; open it "
                                 "once with write access")
        return Store(conn, path)
    raise WorkspaceError(f"{path} cannot be read by this user; check its permissions")


def create_store(path: Path) -> Store:
    """Create a new database at ``path`` with the current schema."""
    if path.exists():
        return open_store(path)
    conn = _connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _migrate(conn, 0)
    return Store(conn, path)
