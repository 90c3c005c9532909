"""The store's interface behaves the same on SQLite and on PostgreSQL (a real server)."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtrack.errors import UsageError
from devtrack.postgres.backend import PostgresStore, open_postgres_store
from devtrack.store import Store, create_store
from devtrack.store_contract import StoreBackend


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """A fresh devtrack database on each backend."""
    store: StoreBackend
    if request.param == "sqlite":
        store = create_store(tmp_path / "devtrack.db")
    else:
        store = open_postgres_store(request.getfixturevalue("pg_url"))
    try:
        yield store
    finally:
        store.close()


def _model(store: StoreBackend, name: str = "kws") -> int:
    return store.insert("models", {"name": name, "task": "other", "created_at": "2026-01-01"})


@pytest.mark.parametrize("cls", [Store, PostgresStore])
def test_each_backend_offers_the_protocol_with_its_signatures(cls: type) -> None:
    for name, member in inspect.getmembers(StoreBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        expected = inspect.signature(member)
        actual = inspect.signature(getattr(cls, name))
        assert list(actual.parameters) == list(expected.parameters), f"{cls.__name__}.{name}"
        assert [p.default for p in actual.parameters.values()] == \
            [p.default for p in expected.parameters.values()], f"{cls.__name__}.{name}"


def test_both_stores_satisfy_the_protocol(any_store: StoreBackend) -> None:
    assert isinstance(any_store, StoreBackend)


def test_insert_returns_the_id_and_query_reads_rows_back(any_store: StoreBackend) -> None:
    first, second = _model(any_store, "a"), _model(any_store, "b")
    assert second == first + 1
    rows = any_store.query("SELECT id, name, task FROM models WHERE name IN (?, ?) ORDER BY id",
                           ("a", "b"))
    assert rows == [{"id": first, "name": "a", "task": "other"},
                    {"id": second, "name": "b", "task": "other"}]
    assert any_store.one("SELECT name FROM models WHERE id = ?", (second,)) == {"name": "b"}
    assert any_store.one("SELECT name FROM models WHERE id = ?", (999,)) is None


def test_values_come_back_as_sqlite_gives_them(any_store: StoreBackend) -> None:
    model_id = _model(any_store)
    any_store.insert("artifacts", {"sha256": "ab" * 32, "format": "onnx", "size_bytes": 5,
                                   "created_at": "t"})
    release = any_store.insert("releases", {
        "model_id": model_id, "version": "1", "artifact_sha256": "ab" * 32, "git_dirty": True,
        "created_by": "u", "host": "h", "created_at": "t", "devtrack_version": "0",
        "summary": "{}"})
    blob = bytes(range(256))
    any_store.insert("runs", {
        "release_id": release, "profile": "p", "profile_hash": "h", "profile_snapshot": "{}",
        "status": "ok", "started_at": "t", "finished_at": "t", "actor": "u", "host": "h",
        "p50_ms": 1.25, "n": 3, "samples": blob})
    run = any_store.one("SELECT p50_ms, n, samples, conditions_hash, warnings FROM runs")
    assert run == {"p50_ms": 1.25, "n": 3, "samples": blob, "conditions_hash": "",
                   "warnings": "[]"}
    assert isinstance(run["samples"], bytes)
    assert any_store.one("SELECT git_dirty FROM releases") == {"git_dirty": 1}
    totals = any_store.one("SELECT COUNT(*) AS n, SUM(n) AS total, SUM(p50_ms) AS ms FROM runs")
    assert totals == {"n": 1, "total": 3, "ms": 1.25}
    assert type(totals["total"]) is int


def test_text_sorts_bytewise_on_both(any_store: StoreBackend) -> None:
    for name in ("beta", "Zed", "alpha", "Alpha", "_x"):
        _model(any_store, name)
    names = [r["name"] for r in any_store.query("SELECT name FROM models ORDER BY name")]
    assert names == ["Alpha", "Zed", "_x", "alpha", "beta"]


def test_meta_is_set_and_replaced(any_store: StoreBackend) -> None:
    assert any_store.meta("k") is None
    any_store.set_meta("k", "1")
    any_store.set_meta("k", "2")
    assert any_store.meta("k") == "2"


def test_a_transaction_rolls_back_everything_on_an_exception(any_store: StoreBackend) -> None:
    with pytest.raises(UsageError), any_store.transaction():
        _model(any_store, "lost")
        any_store.append_event(actor="u", kind="register", model="lost", version="1",
                               payload={})
        raise UsageError("changed my mind")
    assert any_store.query("SELECT * FROM models") == []
    assert any_store.events() == []
    assert any_store.meta("events_head") is None
    with any_store.transaction():
        _model(any_store, "kept")
    assert [r["name"] for r in any_store.query("SELECT name FROM models")] == ["kept"]


def test_the_event_chain_appends_and_verifies(any_store: StoreBackend) -> None:
    for n in range(5):
        with any_store.transaction():
            any_store.append_event(actor="u", kind="notes" if n % 2 else "register",
                                   model="kws", version=str(n), payload={"n": n}, reason="r")
    assert [e["id"] for e in any_store.events()] == [1, 2, 3, 4, 5]
    assert [e["id"] for e in any_store.events(kind="notes", newest_first=True)] == [4, 2]
    assert [e["id"] for e in any_store.events(limit=2, newest_first=True)] == [5, 4]
    assert any_store.verify_events() is None


def test_an_edited_event_is_found(any_store: StoreBackend) -> None:
    for n in range(3):
        any_store.append_event(actor="u", kind="notes", model="kws", version="1",
                               payload={"n": n})
    any_store.query("UPDATE events SET reason = 'forged' WHERE id = 2")
    problem = any_store.verify_events()
    assert problem is not None and problem.event_id == 2


def _chain(store: StoreBackend) -> list[dict[str, Any]]:
    for n in range(3):
        store.append_event(actor="u", kind="register", model="kws", version=str(n),
                           payload={"sha256": "ab", "n": n, "name": "é"}, ts=f"2026-01-0{n + 1}")
    return store.events()


def test_both_backends_build_the_same_chain(tmp_path: Path, pg_url: str) -> None:
    sqlite_store, postgres_store = create_store(tmp_path / "d.db"), open_postgres_store(pg_url)
    try:
        assert _chain(sqlite_store) == _chain(postgres_store)
    finally:
        sqlite_store.close()
        postgres_store.close()


def _sqlite_columns(path: Path) -> dict[str, list[tuple[str, str, bool, Any]]]:
    affinity = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text", "BLOB": "bytea"}
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = "
                                             "'table' ORDER BY name")]
        return {t: [(c[1], affinity[c[2]], bool(c[3] or c[5]),
                     None if c[4] is None else str(c[4]).strip("'"))
                    for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def test_postgres_has_sqlites_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    create_store(tmp_path / "d.db").close()
    store = open_postgres_store(pg_url)
    try:
        rows = store.query(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "is_identity FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name <> 'devtrack_schema' ORDER BY table_name, ordinal_position")
    finally:
        store.close()
    postgres: dict[str, list[tuple[str, str, bool, Any]]] = {}
    for r in rows:
        default = r["column_default"]
        if default is not None:
            default = default.split("::")[0].strip("'")
        postgres.setdefault(r["table_name"], []).append(
            (r["column_name"], r["data_type"],
             r["is_nullable"] == "NO" or r["is_identity"] == "YES", default))
    assert postgres == _sqlite_columns(tmp_path / "d.db")


def test_execute_returns_the_number_of_rows_it_changed(any_store: StoreBackend) -> None:
    for name in ("a", "b", "c"):
        _model(any_store, name)
    with any_store.transaction():
        assert any_store.execute("UPDATE models SET task = ? WHERE name <> ?",
                                 ("regression", "a")) == 2
    assert any_store.execute("UPDATE models SET task = 'x' WHERE name = 'nobody'") == 0
    inserted = any_store.execute("INSERT INTO models (name, task, created_at) VALUES "
                                 "(?, 'other', 't') ON CONFLICT(name) DO NOTHING", ("a",))
    assert inserted == 0
    assert any_store.execute("DELETE FROM models WHERE task = ?", ("regression",)) == 2
    assert [r["name"] for r in any_store.query("SELECT name FROM models")] == ["a"]


def test_iterate_streams_rows_while_other_queries_run(any_store: StoreBackend) -> None:
    for n in range(150):  # more than one server-side batch
        _model(any_store, f"m{n:03d}")
    seen = []
    for row in any_store.iterate("SELECT id, name FROM models WHERE name >= ? ORDER BY name",
                                 ("m",)):
        other = any_store.one("SELECT name FROM models WHERE id = ?", (row["id"],))
        assert other == {"name": row["name"]}
        seen.append(row["name"])
    assert seen == [f"m{n:03d}" for n in range(150)]
    with any_store.transaction():  # inside a write transaction too
        assert len(list(any_store.iterate("SELECT id FROM models"))) == 150
        _model(any_store, "inside")
    assert any_store.one("SELECT name FROM models WHERE name = 'inside'") is not None


def test_table_names_and_references_file(any_store: StoreBackend) -> None:
    from devtrack.auditing import AUDITED_TABLES

    assert set(AUDITED_TABLES) <= any_store.table_names()
    sha = "cd" * 32
    assert not any_store.references_file(sha)
    any_store.insert("artifacts", {"sha256": sha, "format": "onnx", "size_bytes": 5,
                                   "created_at": "t"})
    assert any_store.references_file(sha)
    any_store.execute("DROP TABLE comparisons")
    assert "comparisons" not in any_store.table_names()


def test_each_backend_says_where_it_is_and_which_schema(any_store: StoreBackend) -> None:
    assert any_store.backend in ("sqlite", "postgresql")
    assert any_store.schema_version >= 1
    assert any_store.location


def test_a_broken_constraint_is_one_line_and_rolls_back(any_store: StoreBackend) -> None:
    from devtrack.errors import DatabaseError

    _model(any_store, "kws")
    with pytest.raises(DatabaseError, match="refused the change") as raised, \
            any_store.transaction():
        _model(any_store, "other")
        _model(any_store, "kws")  # UNIQUE (name)
    assert "\n" not in str(raised.value) and "nothing was changed" in str(raised.value)
    with pytest.raises(DatabaseError, match="refused the change"):
        any_store.insert("releases", {  # FOREIGN KEY (model_id)
            "model_id": 999, "version": "1", "artifact_sha256": "x", "created_by": "a",
            "host": "h", "created_at": "t", "devtrack_version": "0", "summary": "{}"})
    assert [r["name"] for r in any_store.query("SELECT name FROM models")] == ["kws"]
