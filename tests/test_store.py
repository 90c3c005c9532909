"""The database module: schema, pragmas, migrations, refusal of newer schemas, the event chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devtrack import store as store_module
from devtrack.errors import DatabaseError, DatabaseReadOnlyError, WorkspaceError
from devtrack.store import SCHEMA_VERSION, create_store, open_store


def test_new_database_uses_wal_foreign_keys_and_current_schema(tmp_path: Path) -> None:
    db = create_store(tmp_path / "d.db")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with pytest.raises(DatabaseError, match="FOREIGN KEY constraint failed"), db.transaction():
        db.insert("releases", {"model_id": 999, "version": "1", "artifact_sha256": "x",
                               "created_by": "a", "host": "h", "created_at": "t",
                               "devtrack_version": "0", "summary": "{}"})
    db.close()


def test_older_database_is_migrated_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.db"
    create_store(path).close()
    applied: list[int] = []

    def migration_2(db) -> None:
        applied.append(2)
        db.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY)")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, migration_2])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(store_module.MIGRATIONS))
    db = open_store(path)
    assert applied == [2]
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert "extra" in db.db.table_names()
    db.close()
    open_store(path).close()
    assert applied == [2]


def test_newer_database_is_refused_and_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 42")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(WorkspaceError, match="newer devtrack"):
        open_store(path)
    assert path.read_bytes() == before


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    path.write_bytes(b"hello, not sqlite" * 100)
    with pytest.raises(WorkspaceError, match="not a usable devtrack database"):
        open_store(path)


def _events(tmp_path: Path, n: int):
    db = create_store(tmp_path / "d.db")
    for i in range(n):
        with db.transaction():
            db.append_event(actor="a", kind="register", model="m", version=str(i),
                            payload={"i": i}, reason=None)
    return db


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    db = _events(tmp_path, 4)
    assert db.verify_events() is None


@pytest.mark.parametrize(
    ("sql", "event_id", "words"),
    [
        ("UPDATE events SET actor = 'mallory' WHERE id = 2", 2, "altered"),
        ("UPDATE events SET payload = '{\"i\": 7}' WHERE id = 3", 3, "altered"),
        ("DELETE FROM events WHERE id = 2", 2, "missing"),
        ("DELETE FROM events WHERE id = 4", 4, "removed"),
    ],
)
def test_edited_or_removed_event_is_named(tmp_path: Path, sql: str, event_id: int,
                                          words: str) -> None:
    db = _events(tmp_path, 4)
    db.conn.execute(sql)
    problem = db.verify_events()
    assert problem is not None
    assert problem.event_id == event_id
    assert words in problem.message


def test_workspace_this_user_cannot_write_opens_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.db"
    db = create_store(path)
    with db.transaction():
        db.append_event(actor="a", kind="register", model="m", version="1", payload={})
    db.close()

    def refuse(_path: Path) -> sqlite3.Connection:  # what a read-only folder does to WAL
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store_module, "_connect", refuse)
    ro = open_store(path)
    assert [e["kind"] for e in ro.events()] == ["register"]
    with pytest.raises(DatabaseReadOnlyError, match="read-only"), ro.transaction():
        ro.append_event(actor="a", kind="x", model=None, version=None, payload={})
    ro.close()
