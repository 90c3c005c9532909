"""The PostgreSQL store on a real server: concurrent writers, refusals, connection failures."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pgserver import PgServer

from devtrack.errors import DatabaseError, DatabaseLockedError, DevtrackError, WorkspaceError
from devtrack.postgres.backend import open_postgres_store
from devtrack.postgres.schema import SCHEMA_VERSION

WRITERS = 8
EVENTS_EACH = 25

_WRITER = textwrap.dedent("""
    import sys
    from devtrack.postgres.backend import open_postgres_store
    store = open_postgres_store(sys.argv[1])
    for n in range(int(sys.argv[3])):
        with store.transaction():
            model_id = store.insert("models", {"name": f"w{sys.argv[2]}-{n}", "task": "other",
                                               "created_at": "t"})
            store.append_event(actor=f"writer{sys.argv[2]}", kind="register",
                               model=f"w{sys.argv[2]}-{n}", version="1", payload={"id": model_id})
    store.close()
""")


def test_concurrent_writers_keep_one_intact_chain_and_lose_nothing(pg_url: str) -> None:
    open_postgres_store(pg_url).close()  # the schema exists before the writers race
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, pg_url, str(w), str(EVENTS_EACH)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for w in range(WRITERS)]
    failures = []
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        if writer.returncode != 0:
            failures.append(err.strip().splitlines()[-1:])
    assert failures == []
    store = open_postgres_store(pg_url)
    try:
        events = store.events()
        assert [e["id"] for e in events] == list(range(1, WRITERS * EVENTS_EACH + 1))
        assert store.verify_events() is None
        models = store.query("SELECT id, name FROM models")
        assert len(models) == WRITERS * EVENTS_EACH
        by_name = {m["name"]: m["id"] for m in models}
        assert all(json.loads(e["payload"])["id"] == by_name[e["model"]] for e in events)
    finally:
        store.close()


def test_concurrent_openers_of_an_empty_database_migrate_it_once(pg_url: str) -> None:
    code = ("import sys; from devtrack.postgres.backend import open_postgres_store; "
            "open_postgres_store(sys.argv[1]).close()")
    openers = [subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE,
                                text=True) for _ in range(4)]
    errors = [o.communicate(timeout=60)[1] for o in openers]
    assert [o.returncode for o in openers] == [0] * 4, errors
    store = open_postgres_store(pg_url)
    try:
        assert store.query("SELECT version FROM devtrack_schema") == [{"version": 1}]
    finally:
        store.close()


def _snapshot(pg_server: PgServer, database: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(pg_server.url(database)) as conn:
        return conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "WHERE c.table_schema = 'public' ORDER BY 1, 2").fetchall()


def test_a_newer_schema_is_refused_untouched(pg_server: PgServer) -> None:
    database = pg_server.fresh_database()
    url = pg_server.url(database)
    store = open_postgres_store(url)
    store.query("INSERT INTO devtrack_schema VALUES (?, 't', '9.9')", (SCHEMA_VERSION + 1,))
    store.close()
    before = _snapshot(pg_server, database)
    with pytest.raises(WorkspaceError, match=f"newer devtrack .schema {SCHEMA_VERSION + 1}"):
        open_postgres_store(url)
    assert _snapshot(pg_server, database) == before


def test_another_applications_database_is_refused_untouched(pg_server: PgServer) -> None:
    import psycopg

    database = pg_server.fresh_database()
    with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id BIGINT PRIMARY KEY, what TEXT)")
        conn.execute("CREATE TABLE invoices (id BIGINT PRIMARY KEY)")
    before = _snapshot(pg_server, database)
    with pytest.raises(WorkspaceError, match=r"not devtrack's \(events, invoices\)") as info:
        open_postgres_store(pg_server.url(database))
    assert info.value.exit_code == 2
    assert _snapshot(pg_server, database) == before


def _one_line_without(error: DevtrackError, *secrets: str) -> str:
    message = str(error)
    assert error.exit_code == 2
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
    return message


def test_an_unreachable_server_is_one_line(pg_server: PgServer) -> None:
    from pgserver import free_port

    url = f"postgresql://devtrack:topsecret9@127.0.0.1:{free_port()}/x"
    with pytest.raises(DatabaseError) as info:
        open_postgres_store(url)
    message = _one_line_without(info.value, "topsecret9")
    assert "cannot reach the PostgreSQL server" in message and "devtrack:***@" in message


def test_wrong_credentials_are_one_line_without_the_password(
        pg_server: PgServer, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "wrong-env-secret")
    with pytest.raises(DatabaseError) as info:
        open_postgres_store(pg_url)
    assert "refused the credentials" in _one_line_without(info.value, "wrong-env-secret")
    monkeypatch.delenv("PGPASSWORD")
    in_url = pg_url.replace("devtrack@", "devtrack:wrong-url-secret@")
    with pytest.raises(DatabaseError) as info:
        open_postgres_store(in_url)
    assert "devtrack:***@" in _one_line_without(info.value, "wrong-url-secret")
    with pytest.raises(DatabaseError, match="refused the credentials"):
        open_postgres_store(pg_server.url("postgres", user="nobody"))


def test_the_right_password_in_the_url_works(pg_server: PgServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_server.url(pg_server.fresh_database()).replace(
        "devtrack@", f"devtrack:{pg_server.password}@")
    monkeypatch.delenv("PGPASSFILE")
    store = open_postgres_store(url)
    try:
        assert pg_server.password not in store.location and store.schema_version == 1
    finally:
        store.close()


def test_a_missing_database_is_one_line(pg_server: PgServer) -> None:
    with pytest.raises(DatabaseError, match="does not exist") as info:
        open_postgres_store(pg_server.url("no_such_db"))
    _one_line_without(info.value)


def test_a_failing_statement_is_a_database_error_and_the_store_goes_on(pg_url: str) -> None:
    store = open_postgres_store(pg_url)
    try:
        with pytest.raises(DatabaseError, match="no_such_table"):
            store.query("SELECT * FROM no_such_table")
        with pytest.raises(DatabaseError), store.transaction():
            store.insert("models", {"name": "a", "task": "t", "created_at": "t"})
            store.insert("models", {"name": "a", "task": "t", "created_at": "t"})
        assert store.query("SELECT * FROM models") == []
        assert store.execute("UPDATE models SET task = 'x'") == 0
    finally:
        store.close()


def test_without_psycopg_a_postgres_url_says_what_to_install(pg_url: str) -> None:
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from devtrack.errors import DatabaseError\n"
            "from devtrack.postgres.backend import open_postgres_store\n"
            "try:\n    open_postgres_store(sys.argv[1])\n"
            "except DatabaseError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True, text=True,
                         timeout=60)
    assert "pip install 'devtrack[postgres]'" in out.stdout, out.stderr


_HOLDER = textwrap.dedent("""
    import sys, time
    from devtrack.postgres.backend import open_postgres_store
    store = open_postgres_store(sys.argv[1])
    with store.transaction():
        store.insert("models", {"name": "half", "task": "other", "created_at": "t"})
        store.append_event(actor="holder", kind="register", model="half", version="1",
                           payload={})
        print("holding", flush=True)
        time.sleep(60)
""")


def _holding_writer(url: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_writer_waiting_too_long_gets_a_locked_error_and_changes_nothing(pg_url: str) -> None:
    open_postgres_store(pg_url).close()
    holder = _holding_writer(pg_url)
    try:
        store = open_postgres_store(pg_url, lock_timeout_ms=300)
        try:
            with pytest.raises(DatabaseLockedError) as info, store.transaction():
                store.insert("models", {"name": "late", "task": "other", "created_at": "t"})
            _one_line_without(info.value)
            assert store.query("SELECT name FROM models") == []
        finally:
            store.close()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_killed_writer_leaves_nothing_and_releases_the_lock(pg_url: str) -> None:
    open_postgres_store(pg_url).close()
    holder = _holding_writer(pg_url)
    holder.kill()
    holder.wait(timeout=30)
    store = open_postgres_store(pg_url, lock_timeout_ms=20_000)
    try:
        assert store.query("SELECT name FROM models") == []
        assert store.events() == [] and store.meta("events_head") is None
        with store.transaction():
            store.append_event(actor="next", kind="register", model="m", version="1",
                               payload={})
        assert [e["id"] for e in store.events()] == [1]
        assert store.verify_events() is None
    finally:
        store.close()


def test_a_user_who_may_not_create_tables_gets_one_line_and_nothing_is_made(
        pg_server: PgServer) -> None:
    import psycopg

    from devtrack.errors import DatabaseReadOnlyError

    database = pg_server.fresh_database()
    pg_server.admin("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                    "'visitor') THEN CREATE ROLE visitor LOGIN PASSWORD 'visitor-pw-42'; "
                    "END IF; END $$")
    url = pg_server.url(database, user="visitor").replace("visitor@", "visitor:visitor-pw-42@")
    with pytest.raises(DatabaseReadOnlyError) as info:
        open_postgres_store(url)
    assert "permission denied" in _one_line_without(info.value, "visitor-pw-42")
    with psycopg.connect(pg_server.url(database)) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = 'public'").fetchone() == (0,)


def test_importing_the_backend_does_not_load_psycopg() -> None:
    code = ("import sys, devtrack.postgres.backend, devtrack.store_contract; "
            "print('psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr
