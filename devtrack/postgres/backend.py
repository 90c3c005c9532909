"""The PostgreSQL store: ``store.Store``'s interface over psycopg 3, writers serialised as on
SQLite, so the audit trail stays one hash chain under concurrent writers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from devtrack.core.database_url import mask_password, parse_database_url
from devtrack.errors import DatabaseError
from devtrack.postgres.dialect import to_psycopg
from devtrack.postgres.failures import database_errors
from devtrack.postgres.schema import (
    SCHEMA_VERSION,
    TABLES_1,
    VERSION_TABLE,
    migrate,
    recognise,
    schema_version,
    table_names,
)
from devtrack.store_contract import (
    REFERENCES_FILE_SQL,
    Params,
    TableShape,
    append_chained_event,
    events_query,
    verify_event_chain,
)

if TYPE_CHECKING:
    import psycopg

    from devtrack.core.audit import ChainProblem

# Every write transaction takes this transaction-level advisory lock first, as SQLite's
# BEGIN IMMEDIATE takes its write lock: writers run one at a time (reads never wait), each
# reads the committed state of the ones before it at READ COMMITTED, and the library's
# check-then-write code (a duplicate version, an already deployed release, the chain head)
# keeps SQLite's guarantees without retries. SERIALIZABLE would need the whole transaction
# body re-run on a serialization failure, which a `with store.transaction():` block cannot do.
WRITE_LOCK = 0x64747277
LOCK_TIMEOUT_MS = 10_000  # as store.BUSY_TIMEOUT_MS: then DatabaseLockedError
CONNECT_TIMEOUT_S = 10
ITERATE_BATCH = 64  # rows a streamed read fetches at a time (runs carry their samples)
# Tables whose rows get an identity ``id`` (insert returns it); meta and artifacts have none.
IDENTITY_TABLES = TABLES_1 - {"meta", "artifacts"}


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise DatabaseError("PostgreSQL support is not installed; install it with "
                            "pip install 'devtrack[postgres]' (psycopg 3)") from None
    return psycopg


def _adapted(params: Params) -> Params:
    """SQLite stores True as 1; PostgreSQL would refuse a boolean in an integer column."""
    if isinstance(params, dict):
        return {key: int(v) if isinstance(v, bool) else v for key, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


class PostgresStore:
    """An open devtrack database on a PostgreSQL server; open with :func:`open_postgres_store`.

    Same interface as ``store.Store`` (``store_contract.StoreBackend``); SQL is given in
    SQLite's dialect with ``?`` placeholders (``postgres/dialect.py``)."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self._conn = conn
        self._url = url
        self._location = mask_password(url)
        self._cursors = 0

    def close(self) -> None:
        self._conn.close()

    @property
    def location(self) -> str:
        return self._location

    @property
    def backend(self) -> str:
        return "postgresql"

    @property
    def schema_version(self) -> int:
        with database_errors(self._url):
            return schema_version(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction under the write lock: everything inside commits together or not
        at all (nested, it is a savepoint)."""
        with database_errors(self._url), self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield

    # -- queries --------------------------------------------------------------------------

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        with database_errors(self._url):
            cursor = self._conn.execute(to_psycopg(sql, named=isinstance(params, dict)),
                                        _adapted(params))
            if cursor.description is None:
                return []
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def iterate(self, sql: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """The rows through a server-side cursor, ITERATE_BATCH at a time, inside a
        transaction of their own (a savepoint inside :meth:`transaction`), so other queries
        may run while they are consumed."""
        self._cursors += 1
        name = f"devtrack_rows_{self._cursors}"
        with database_errors(self._url), self._conn.transaction():
            cursor = self._conn.cursor(name=name)
            try:
                cursor.itersize = ITERATE_BATCH
                cursor.execute(to_psycopg(sql, named=isinstance(params, dict)),
                               _adapted(params))
                names = [column.name for column in cursor.description or ()]
                for values in cursor:
                    yield dict(zip(names, values, strict=True))
            finally:
                cursor.close()

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT, UPDATE or DELETE; the number of rows it changed."""
        with database_errors(self._url):
            cursor = self._conn.execute(to_psycopg(sql, named=isinstance(params, dict)),
                                        _adapted(params))
            return int(cursor.rowcount)

    def table_names(self) -> set[str]:
        with database_errors(self._url):
            return table_names(self._conn)

    def references_file(self, sha256: str) -> bool:
        """Whether a row (artifact, release or dataset) needs the stored file ``sha256``."""
        return self.one(REFERENCES_FILE_SQL, (sha256, sha256, sha256)) is not None

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.query("INSERT INTO meta(key, value) VALUES (?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row; its ``id`` (0 for the tables keyed otherwise: meta, artifacts)."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        returning = " RETURNING id" if table in IDENTITY_TABLES else ""
        rows = self.query(f"INSERT INTO {table} ({columns}) VALUES ({marks}){returning}",
                          tuple(row.values()))
        return int(rows[0]["id"]) if rows else 0

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
        """Append one chained event under the write lock (inside :meth:`transaction`, it
        commits with the change it records)."""
        with self.transaction():
            return append_chained_event(self, actor=actor, kind=kind, model=model,
                                        version=version, payload=payload, reason=reason, ts=ts)

    def events(self, model: str | None = None, kind: str | None = None,
               newest_first: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Audit events in id order (or newest first), optionally of one model and kind."""
        return self.query(*events_query(model, kind, newest_first, limit))

    def verify_events(self) -> ChainProblem | None:
        return verify_event_chain(self)

    # -- whole tables (devtrack db copy) ----------------------------------------------------

    def tables(self) -> dict[str, TableShape]:
        """devtrack's tables as the server has them (the schema-version table excluded),
        read from the catalog, so no list of columns can drift from the schema."""
        columns: dict[str, list[str]] = {}
        for row in self.query(
                "SELECT table_name AS t, column_name AS c FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
            if row["t"] != VERSION_TABLE:
                columns.setdefault(row["t"], []).append(row["c"])
        keys: dict[str, list[str]] = {}
        for row in self.query(
                "SELECT i.indrelid::regclass::text AS t, a.attname AS c FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indisprimary AND i.indrelid::regclass::text = ANY(?) "
                "ORDER BY array_position(i.indkey, a.attnum)", (list(columns),)):
            keys.setdefault(row["t"], []).append(row["c"])
        references: dict[str, set[str]] = {}
        for row in self.query(
                "SELECT conrelid::regclass::text AS t, confrelid::regclass::text AS r "
                "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(?)",
                (list(columns),)):
            references.setdefault(row["t"], set()).add(row["r"])
        return {name: TableShape(tuple(cols), tuple(keys.get(name, ())),
                                 frozenset(references.get(name, ())))
                for name, cols in sorted(columns.items())}

    def count_rows(self, table: str) -> int:
        """How many rows ``table`` (a name from :meth:`tables`) holds."""
        row = self.one(f'SELECT COUNT(*) AS n FROM "{table}"')
        return int(row["n"]) if row else 0

    def copy_rows(self, table: str, columns: tuple[str, ...],
                  rows: Iterable[tuple[Any, ...]]) -> int:
        """Write ``rows`` (tuples of ``columns``, ids included) into ``table`` with one binary
        COPY; how many were written. Call inside :meth:`transaction`."""
        types = {row["c"]: row["u"] for row in self.query(
            "SELECT column_name AS c, udt_name AS u FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?", (table,))}
        names = ", ".join(f'"{c}"' for c in columns)
        written = 0
        with database_errors(self._url), self._conn.cursor() as cursor, cursor.copy(
                f'COPY "{table}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types([types[c] for c in columns])
            for row in rows:
                copy.write_row(row)
                written += 1
        return written

    def advance_identities(self) -> None:
        """Set every identity sequence past its table's largest id, so the next insert after
        rows written with their own ids gets a new one."""
        for row in self.query(
                "SELECT table_name AS t, column_name AS c FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND is_identity = 'YES'"):
            self.query(f'SELECT setval(pg_get_serial_sequence(?, ?), '
                       f'COALESCE(MAX("{row["c"]}"), 0) + 1, false) FROM "{row["t"]}"',
                       (f'"{row["t"]}"', row["c"]))


def _connect_options(url: str) -> dict[str, Any]:
    """Bounded waits and a recognisable name, unless the URL or libpq's environment set
    them."""
    import os

    given = parse_database_url(url).params
    options: dict[str, Any] = {}
    if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
        options["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in given and "PGAPPNAME" not in os.environ:
        options["application_name"] = "devtrack"
    return options


def _sqlite_numbers(conn: psycopg.Connection[Any]) -> None:
    """NUMERIC results (SUM over integers) as SQLite gives them: int when whole, else float,
    never Decimal (which json.dumps refuses)."""
    from psycopg.types.numeric import NumericLoader

    class SqliteNumberLoader(NumericLoader):
        def load(self, data: Any) -> Any:
            value = super().load(data)
            if value.is_finite() and value == value.to_integral_value():
                return int(value)
            return float(value)

    conn.adapters.register_loader("numeric", SqliteNumberLoader)


def open_postgres_store(url: str, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> PostgresStore:
    """Connect to the devtrack database at ``url`` (a libpq URL; the password from PGPASSWORD,
    ~/.pgpass or a service file), creating devtrack's tables in an empty database and
    upgrading an older schema. A newer schema or another application's tables are refused
    untouched (WorkspaceError); an unreachable server, wrong credentials or a missing database
    raise DatabaseError; no message shows a password. A writer waits up to
    ``lock_timeout_ms`` for another one, then gets DatabaseLockedError."""
    psycopg = _psycopg()
    where = mask_password(url)
    options = _connect_options(url)
    with database_errors(url):
        conn = psycopg.connect(url, autocommit=True, **options)
    try:
        with database_errors(url):
            conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
            _sqlite_numbers(conn)
            if recognise(conn, where) < SCHEMA_VERSION:
                migrate(conn, where)
    except BaseException:
        conn.close()
        raise
    return PostgresStore(conn, url)
