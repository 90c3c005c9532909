"""The one module that owns the SQLite database: schema, migrations, queries, events."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtrack.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    WorkspaceError,
)
from devtrack.store_contract import (
    REFERENCES_FILE_SQL,
    Params,
    TableShape,
    append_chained_event,
    events_query,
    verify_event_chain,
)
from devtrack.store_contract import utc_now as utc_now  # the one timestamp format, re-exported

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


def _migration_4(db: sqlite_utils.Database) -> None:
    """Run identity is the profile's conditions, not every setting: a new column, computed
    from each run's stored (and sealed) snapshot, which stays as it was."""
    from devtrack.core.conditions import conditions_hash

    columns = [row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()]
    if "conditions_hash" not in columns:  # another process may have migrated since we looked
        db.execute("ALTER TABLE runs ADD COLUMN conditions_hash TEXT NOT NULL DEFAULT ''")
    rows = db.execute("SELECT id, profile_snapshot FROM runs").fetchall()
    for run_id, snapshot in rows:
        try:
            data = json.loads(snapshot or "{}")
        except ValueError:  # a damaged snapshot: the run matches no conditions
            continue
        if isinstance(data, dict):
            db.execute("UPDATE runs SET conditions_hash = ? WHERE id = ?",
                       (conditions_hash(data), run_id))
    db.execute("CREATE INDEX IF NOT EXISTS idx_runs_conditions "
               "ON runs(release_id, profile, conditions_hash)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_1, _migration_2, _migration_3, _migration_4,
]
SCHEMA_VERSION = len(MIGRATIONS)
TABLES_BY_VERSION: dict[int, frozenset[str]] = {
    1: frozenset({"meta", "models", "artifacts", "releases", "events"}),
    2: frozenset({"runs"}),
    3: frozenset({"datasets", "evaluations", "comparisons", "checks", "deployments"}),
}
"""The tables each migration creates: how a devtrack database is told from another SQLite
file, and a schema version from the tables it really has."""


def database_error(exc: sqlite3.OperationalError | sqlite3.IntegrityError) -> DatabaseError:
    """The devtrack error an SQLite failure becomes: the one place they are translated."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):  # a constraint the library did not foresee
        return DatabaseError(f"the workspace database refused the change ({text}); nothing "
                             "was changed")
    if "locked" in text or "busy" in text:
        return DatabaseLockedError(
            "the workspace database is locked by another devtrack process; try again when it "
            "has finished (nothing was changed)")
    if "readonly" in text or "read-only" in text:
        return DatabaseReadOnlyError(
            "the workspace is read-only for this user; this command needs to write to it "
            "(nothing was changed)")
    return DatabaseError(f"the workspace database failed: {text}")


@contextmanager
def database_errors() -> Iterator[None]:
    """Raise :func:`database_error` for an SQLite failure inside the block (or function)."""
    try:
        yield
    except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:
        raise database_error(exc) from exc


def _schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}


def _recognise(path: Path, conn: sqlite3.Connection) -> int:
    """The schema version of a devtrack database, read without writing anything.

    A devtrack database has ``user_version`` ≥ 1 and devtrack's own tables (at least three
    of those schema 1 created: a damaged one is still recognised, so ``audit verify`` can
    name what is missing). Any other SQLite file, and one whose version contradicts its
    tables (lowered by hand), is refused with WorkspaceError and left untouched.
    """
    from devtrack.core.text import clip

    version = _schema_version(conn)
    tables = _table_names(conn)
    if tables and len(tables & TABLES_BY_VERSION[1]) < 3:
        listed = clip(", ".join(sorted(tables)), 120)
        raise WorkspaceError(
            f"{path} is an SQLite database but not a devtrack one (its tables: {listed}); "
            "devtrack left it untouched — point --workspace at a devtrack workspace, or move "
            "the file away and run 'devtrack init' to create one")
    if version > SCHEMA_VERSION:
        raise WorkspaceError(
            f"{path} was written by a newer devtrack (schema {version}; this devtrack knows up "
            f"to {SCHEMA_VERSION}); upgrade devtrack with 'pip install -U devtrack' — the "
            "database was not modified")
    if not tables:
        raise WorkspaceError(f"{path} holds no devtrack tables; it is not a devtrack database "
                             "(or it was damaged); restore it from a backup")
    later = sorted(name for number, names in TABLES_BY_VERSION.items() if number > version
                   for name in names & tables)
    if version == 0 or later:
        actual = max(number for number, names in TABLES_BY_VERSION.items() if names & tables)
        found = f" ({', '.join(later)} belong to schema {actual})" if later else ""
        raise WorkspaceError(
            f"{path} says schema version {version}, which is inconsistent with its "
            f"tables{found}; nothing was changed — if user_version was changed by hand, set it "
            f"back with: sqlite3 {path} 'PRAGMA user_version = {actual}'")
    return version


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

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def schema_version(self) -> int:
        with database_errors():
            return _schema_version(self.conn)

    @property
    def backend(self) -> str:
        return "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all.

        It takes the write lock at once (BEGIN IMMEDIATE), so what is read inside decides
        what is written: a check-then-insert here cannot race another writer. A lock held
        longer than the busy timeout raises DatabaseLockedError, which the CLI reports on one
        line. ``last_lock_wait_s`` is how long the lock took (benchmarks/concurrency.py).
        """
        with database_errors():
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

    @database_errors()
    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [col[0] for col in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def iterate(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """The rows one at a time (an SQLite cursor: one row's blobs in memory at a time)."""
        with database_errors():
            cursor = self.conn.execute(sql, params)
            names = [col[0] for col in cursor.description or ()]
            for values in cursor:
                yield dict(zip(names, values, strict=True))

    @database_errors()
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT, UPDATE or DELETE; the number of rows it changed."""
        return int(self.conn.execute(sql, params).rowcount)

    @database_errors()
    def table_names(self) -> set[str]:
        return _table_names(self.conn)

    def references_file(self, sha256: str) -> bool:
        """Whether a row (artifact, release or dataset) needs the stored file ``sha256``."""
        return self.one(REFERENCES_FILE_SQL, (sha256, sha256, sha256)) is not None

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    @database_errors()
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @database_errors()
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
        return append_chained_event(self, actor=actor, kind=kind, model=model,
                                    version=version, payload=payload, reason=reason, ts=ts)

    def events(self, model: str | None = None, kind: str | None = None,
               newest_first: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Audit events in id order (or newest first), optionally of one model and kind."""
        return self.query(*events_query(model, kind, newest_first, limit))

    def verify_events(self) -> ChainProblem | None:
        return verify_event_chain(self)

    # -- whole tables (devtrack db copy) ----------------------------------------------------

    @database_errors()
    def tables(self) -> dict[str, TableShape]:
        """devtrack's tables as this file has them (SQLite's own excluded), read from the
        schema itself, so no list of columns can drift from it."""
        shapes = {}
        for name in sorted(_table_names(self.conn)):
            info = self.conn.execute(f'PRAGMA table_info("{name}")').fetchall()
            key = tuple(row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5]))
            references = {row[2] for row in
                          self.conn.execute(f'PRAGMA foreign_key_list("{name}")').fetchall()}
            shapes[name] = TableShape(tuple(row[1] for row in info), key,
                                      frozenset(references))
        return shapes

    @database_errors()
    def count_rows(self, table: str) -> int:
        """How many rows ``table`` (a name from :meth:`tables`) holds."""
        return int(self.conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])

    def stream_rows(self, table: str, shape: TableShape,
                    batch: int = 256) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table`` as a tuple of ``shape.columns``, in key order, fetched
        ``batch`` rows at a time (sample blobs are never all in memory at once)."""
        columns = ", ".join(f'"{c}"' for c in shape.columns)
        order = f" ORDER BY {', '.join(shape.key)}" if shape.key else ""
        with database_errors():
            cursor = self.conn.execute(f'SELECT {columns} FROM "{table}"{order}')
            while rows := cursor.fetchmany(batch):
                yield from rows

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database (a read transaction: writers go on,
        in WAL mode, and are not seen), however long they take."""
        with database_errors():
            self.conn.execute("BEGIN DEFERRED")
            try:
                self.conn.execute("SELECT COUNT(*) FROM meta").fetchone()  # the snapshot starts
                yield
            finally:
                self.conn.rollback()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _migrate(conn: sqlite3.Connection, current: int) -> None:
    import sqlite_utils

    store_db = sqlite_utils.Database(conn)
    for number in range(current, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        if _schema_version(conn) > number:  # another process upgraded it meanwhile
            conn.rollback()
            continue
        try:
            MIGRATIONS[number](store_db)
            conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@database_errors()
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
    conn = None
    try:
        conn = _connect(path)
        version = _recognise(path, conn)
    except WorkspaceError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.OperationalError as exc:
        if conn is not None:
            conn.close()
        if "readonly" in str(exc):
            return _open_read_only(path)
        raise WorkspaceError(f"{path} is not a usable devtrack database ({exc})") from None
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise WorkspaceError(f"{path} is not a usable devtrack database ({exc})") from None
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
        conn.close()
        return _open_read_only(path)
    conn.execute("PRAGMA foreign_keys = ON")
    if version < SCHEMA_VERSION:
        try:
            _migrate(conn, version)
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            reached = _schema_version(conn)
            conn.close()
            raise WorkspaceError(
                f"could not upgrade {path} from schema {version} to {SCHEMA_VERSION} ({exc}); "
                f"it was left at schema {reached} — restore it from a backup") from None
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
            version = _recognise(path, conn)
        except sqlite3.OperationalError:
            continue
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{path} is not a usable devtrack database ({exc})") from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise WorkspaceError(f"{path} is at schema {version}, this devtrack needs "
                                 f"{SCHEMA_VERSION}, and this user cannot write it; open it "
                                 "once with write access")
        return Store(conn, path)
    raise WorkspaceError(f"{path} cannot be read by this user; check its permissions")


@database_errors()
def create_store(path: Path) -> Store:
    """Create a new database at ``path`` with the current schema."""
    if path.exists():
        return open_store(path)
    conn = _connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _migrate(conn, 0)
    return Store(conn, path)
