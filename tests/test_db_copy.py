"""devtrack db copy: a real SQLite workspace into a real PostgreSQL database, every table row
for row, the chain verified there; refusals leave the pg_url as it was; a kill leaves it
empty and a retry succeeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pgserver import PgServer, free_port

from devtrack.dbcopy import copy_order
from devtrack.errors import DatabaseError
from devtrack.postgres.backend import PostgresStore, open_postgres_store
from devtrack.store import open_store
from devtrack.store_contract import TableShape
from devtrack.workspace import DOT_DIR
from tests.test_cli_bench import TINY_PROFILE
from tests.test_cli_errors import assert_clean_error

KILL_RUNS = 500  # rows in the runs table of the copy that is killed midway


@pytest.fixture(scope="module")
def source_ws(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
              mlp_onnx_b: Path) -> Path:
    """A workspace with a row in every table, made by the CLI with real measurements: a
    dataset, two releases benched with evaluations, an approval, a deployment, a side-by-side
    comparison and a check."""
    from devtrack.cli import main

    base = tmp_path_factory.mktemp("copy-source")
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    np.savez(base / "digits.npz", input=x, labels=np.arange(8) % 4)
    root = base / "ws"
    assert main(["init", str(root)]) == 0
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    for step in (["dataset", "add", base / "digits.npz", "--name", "digits"],
                 ["register", mlp_onnx, "-m", "kws", "-v", "1.0", "--notes", "first"],
                 ["register", mlp_onnx_b, "-m", "kws", "-v", "1.1", "--parent", "1.0",
                  "--notes", "second"],
                 ["bench", "kws@1.0", "kws@1.1", "--profile", "tiny", "--eval", "digits"],
                 ["promote", "kws@1.0", "--to", "approved", "--reason", "ok"],
                 ["check", "kws@1.0", "--profile", "tiny", "--no-rerun"],
                 ["deploy", "kws@1.0", "--profile", "tiny", "--reason", "first rollout"],
                 ["compare", "kws@1.0", "kws@1.1", "--profile", "tiny", "--rerun",
                  "--repeats", "4"],
                 ["check", "kws@1.1", "--profile", "tiny", "--no-rerun"]):
        assert main([str(a) for a in [*step, "-w", root]]) == 0, step
    store = open_store(root / DOT_DIR / "devtrack.db")
    try:
        empty = [name for name in store.tables() if store.count_rows(name) == 0]
    finally:
        store.close()
    assert empty == [], f"the source workspace must fill every table; empty: {empty}"
    return root


def _all_rows(store: Any, name: str, shape: TableShape) -> list[dict[str, Any]]:
    columns = ", ".join(f'"{c}"' for c in sorted(shape.columns))
    order = ", ".join(shape.key)
    rows: list[dict[str, Any]] = store.query(f'SELECT {columns} FROM "{name}" ORDER BY {order}')
    return rows


def _counts(store: PostgresStore) -> dict[str, int]:
    return {name: store.count_rows(name) for name in store.tables()}


def _copy(ws: Path, url: str, *extra: str, timeout: float = 120
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devtrack", "db", "copy", "--to", url,
                           "-w", str(ws), *extra], capture_output=True, text=True,
                          timeout=timeout)


def test_copy_reproduces_every_table_row_by_row_and_the_chain_verifies(
        source_ws: Path, pg_url: str, run_cli) -> None:
    result = run_cli("db", "copy", "--to", pg_url, "-w", source_ws, "--json")
    assert result.exit_code == 0, result.err
    assert result.err == ""  # a copy this quick prints no progress
    report = json.loads(result.out)
    source = open_store(source_ws / DOT_DIR / "devtrack.db")
    copy = open_postgres_store(pg_url)
    try:
        shapes = source.tables()
        assert set(copy.tables()) == set(shapes)
        assert report["rows"] == {name: source.count_rows(name) for name in shapes}
        assert report["total_rows"] == sum(report["rows"].values())
        for name, shape in shapes.items():
            assert _all_rows(copy, name, shape) == _all_rows(source, name, shape), name
        samples = copy.query("SELECT samples FROM runs ORDER BY id")
        assert all(isinstance(r["samples"], bytes) and len(r["samples"]) > 0 for r in samples)
        assert copy.verify_events() is None
        assert report["events_verified"] == len(source.events()) > 0
        # Every identity sequence is past the copied ids: new rows get new ids, and the
        # chain goes on from the copied head.
        top = {name: (copy.one(f'SELECT MAX(id) AS m FROM "{name}"') or {})["m"]
               for name, shape in shapes.items() if shape.key == ("id",)}
        with copy.transaction():
            model_id = copy.insert("models", {"name": "after-copy", "task": "other",
                                              "created_at": "t"})
            event = copy.append_event(actor="t", kind="register", model="after-copy",
                                      version=None, payload={})
        assert model_id == top["models"] + 1
        assert event["id"] == top["events"] + 1
        assert copy.verify_events() is None
    finally:
        source.close()
        copy.close()


def test_audit_verify_passes_on_the_copy_and_the_library_reads_it_as_the_original(
        source_ws: Path, pg_url: str, tmp_path: Path, run_cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shutil.copytree(source_ws, tmp_path / "moved")
    assert run_cli("db", "copy", "--to", pg_url, "-w", folder).exit_code == 0
    original = {args: run_cli(*args, "-w", folder, "--json").out
                for args in (("releases",), ("show", "kws@1.1"), ("history", "kws"),
                             ("results", "kws@1.0"))}
    # The same folder (its artifacts, its profiles) on the copy alone: the SQLite file goes.
    (folder / DOT_DIR / "devtrack.db").rename(tmp_path / "devtrack.db.moved-away")
    monkeypatch.setenv("DEVTRACK_DATABASE_URL", pg_url)
    verified = run_cli("audit", "verify", "-w", folder)
    assert verified.exit_code == 0, verified.out + verified.err
    for args, out in original.items():
        assert run_cli(*args, "-w", folder, "--json").out == out, args


def test_a_non_empty_target_is_refused_and_left_as_it_was(source_ws: Path, pg_url: str,
                                                          run_cli) -> None:
    assert run_cli("db", "copy", "--to", pg_url, "-w", source_ws).exit_code == 0
    store = open_postgres_store(pg_url)
    try:
        with store.transaction():
            store.append_event(actor="t", kind="note", model=None, version=None, payload={})
        before = _counts(store)
        snapshot = _all_rows(store, "events", store.tables()["events"])
    finally:
        store.close()
    again = run_cli("db", "copy", "--to", pg_url, "-w", source_ws)
    assert_clean_error(again, "is not empty", "nothing was written")
    store = open_postgres_store(pg_url)
    try:
        assert _counts(store) == before
        assert _all_rows(store, "events", store.tables()["events"]) == snapshot
    finally:
        store.close()


def test_a_target_with_only_a_meta_row_is_not_empty(source_ws: Path, pg_url: str,
                                                   run_cli) -> None:
    store = open_postgres_store(pg_url)
    try:
        store.set_meta("someone", "was here")
    finally:
        store.close()
    assert_clean_error(run_cli("db", "copy", "--to", pg_url, "-w", source_ws),
                       "not empty", "meta 1")


def test_another_applications_database_is_refused_untouched(
        source_ws: Path, pg_server: PgServer, pg_url: str, run_cli) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    assert_clean_error(run_cli("db", "copy", "--to", pg_url, "-w", source_ws),
                       "not devtrack's", "untouched")
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = 'public'").fetchall()
    assert tables == [("orders",)]


@pytest.mark.parametrize(("url", "needle"), [
    ("postgresql://ci:hunter2@127.0.0.1:5432/devtrack", "contains a password"),
    ("postgresql://ci@127.0.0.1/devtrack?password=hunter2", "contains a password"),
    ("sqlite:///tmp/x.db", "is not a PostgreSQL URL"),
    ("postgresql://ci@127.0.0.1:99999/devtrack", "bad host or port"),
])
def test_bad_urls_are_refused_in_one_line_without_showing_the_password(
        source_ws: Path, url: str, needle: str, run_cli) -> None:
    result = run_cli("db", "copy", "--to", url, "-w", source_ws)
    assert_clean_error(result, needle)
    assert "hunter2" not in result.err


def test_an_unreachable_server_is_one_line_exit_2(source_ws: Path, pg_server: PgServer,
                                                  run_cli) -> None:
    url = f"postgresql://devtrack@127.0.0.1:{free_port()}/devtrack?connect_timeout=5"
    assert_clean_error(run_cli("db", "copy", "--to", url, "-w", source_ws),
                       "cannot reach the PostgreSQL server")


def test_a_workspace_already_on_postgresql_is_refused(
        source_ws: Path, pg_url: str, pg_server: PgServer, run_cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    other = pg_server.url(pg_server.fresh_database())
    monkeypatch.setenv("DEVTRACK_DATABASE_URL", other)
    assert_clean_error(run_cli("db", "copy", "--to", pg_url, "-w", source_ws),
                       "not a SQLite file")
    store = open_postgres_store(pg_url)
    try:
        assert set(_counts(store).values()) == {0}
    finally:
        store.close()


def test_a_missing_database_and_a_missing_option_are_refused(
        source_ws: Path, pg_server: PgServer, run_cli) -> None:
    assert_clean_error(run_cli("db", "copy", "--to", pg_server.url("nosuchdb"), "-w",
                               source_ws), "does not exist")
    assert_clean_error(run_cli("db", "copy", "-w", source_ws), "--to")


def test_a_workspace_whose_chain_does_not_verify_is_not_copied(
        source_ws: Path, pg_url: str, tmp_path: Path, run_cli) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(source_ws, edited)
    conn = sqlite3.connect(edited / DOT_DIR / "devtrack.db")
    conn.execute("UPDATE events SET reason = 'rewritten' WHERE id = 2")
    conn.commit()
    conn.close()
    assert_clean_error(run_cli("db", "copy", "--to", pg_url, "-w", edited),
                       "does not verify on the copy", "event 2", "nothing was written")
    store = open_postgres_store(pg_url)
    try:
        assert set(_counts(store).values()) == {0}
    finally:
        store.close()


def _grow_runs(root: Path, rows: int) -> None:
    """Add copies of the workspace's measured runs (samples and all) until it has ``rows``."""
    conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)") if r[1] != "id"]
        names = ", ".join(columns)
        while (have := conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) < rows:
            conn.execute(f"INSERT INTO runs ({names}) SELECT {names} FROM runs ORDER BY id "
                         f"LIMIT {rows - have}")
        conn.commit()
    finally:
        conn.close()


def _start_copy(ws: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "devtrack", "db", "copy", "--to", url,
                             "-w", str(ws), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(conn: Any, sql: str, copier: subprocess.Popen[str]) -> Any:
    """The first row of ``sql`` once it has one (the copy reached the point the test blocks
    it at); fails if the copy ends first, or after 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = conn.execute(sql).fetchone()
        if row is not None:
            return row
        assert copier.poll() is None, copier.communicate(timeout=30)
        time.sleep(0.05)
    raise AssertionError(f"the copy never reached: {sql}")


def _wait_for_gone(conn: Any, pid: int) -> None:
    """Wait (up to 30 s) until the server has ended the killed client's backend."""
    deadline = time.monotonic() + 30
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, "the killed copy's backend lingers"
        time.sleep(0.05)


def test_a_copy_killed_midway_leaves_the_target_empty_and_a_retry_succeeds(
        source_ws: Path, pg_url: str, tmp_path: Path) -> None:
    import psycopg

    big = tmp_path / "big"
    shutil.copytree(source_ws, big)
    _grow_runs(big, KILL_RUNS)
    open_postgres_store(pg_url).close()  # the schema, so the test can lock the runs table
    with psycopg.connect(pg_url, autocommit=True) as blocker, \
            psycopg.connect(pg_url, autocommit=True) as watcher:
        # The copy writes runs after the tables they reference: a lock that COPY into runs
        # must wait for stops it midway, every earlier table written and not committed.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE runs IN SHARE MODE")
        copier = _start_copy(big, pg_url)
        try:
            pid, xid = _wait_for(
                watcher, "SELECT pid, backend_xid FROM pg_stat_activity WHERE query LIKE "
                "'COPY \"runs\"%' AND wait_event_type = 'Lock'", copier)
            assert xid is not None  # its transaction has written rows (the tables before)
            os.kill(copier.pid, signal.SIGKILL)
            copier.communicate(timeout=30)
        finally:
            if copier.poll() is None:
                copier.kill()
                copier.communicate(timeout=30)
            blocker.execute("ROLLBACK")
        assert copier.returncode == -signal.SIGKILL
        _wait_for_gone(watcher, pid)
    store = open_postgres_store(pg_url)
    try:
        assert set(_counts(store).values()) == {0}
    finally:
        store.close()
    retry = _copy(big, pg_url, "--json")
    assert retry.returncode == 0, retry.stderr
    assert json.loads(retry.stdout)["rows"]["runs"] == KILL_RUNS
    store = open_postgres_store(pg_url)
    try:
        assert store.count_rows("runs") == KILL_RUNS
        assert store.verify_events() is None
    finally:
        store.close()


def test_a_copy_that_takes_a_moment_prints_its_progress_on_stderr(
        source_ws: Path, pg_url: str, tmp_path: Path) -> None:
    import re

    import psycopg

    from devtrack.cli.db_cmds import CopyProgressLines

    big = tmp_path / "big"
    shutil.copytree(source_ws, big)
    _grow_runs(big, KILL_RUNS)
    open_postgres_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as blocker, \
            psycopg.connect(pg_url, autocommit=True) as watcher:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE runs IN SHARE MODE")  # held until the copy is past DELAY_S
        copier = _start_copy(big, pg_url)
        try:
            _wait_for(watcher, "SELECT 1 FROM pg_stat_activity WHERE query LIKE "
                               "'COPY \"runs\"%' AND wait_event_type = 'Lock'", copier)
            time.sleep(CopyProgressLines.DELAY_S + 0.1)
        finally:
            blocker.execute("ROLLBACK")
        out, err = copier.communicate(timeout=120)
    assert copier.returncode == 0, err
    assert json.loads(out)["rows"]["runs"] == KILL_RUNS
    lines = err.splitlines()
    assert lines and all(re.fullmatch(r"copying \w+: [\d,]+/[\d,]+ rows \([\d.]+ s\)", line)
                         for line in lines), lines


def test_a_writer_on_the_workspace_during_the_copy_is_not_blocked_nor_copied(
        source_ws: Path, pg_url: str, tmp_path: Path, mlp_tflite: Path) -> None:
    import psycopg

    from devtrack.postgres.backend import WRITE_LOCK

    folder = shutil.copytree(source_ws, tmp_path / "busy")
    before = open_store(folder / DOT_DIR / "devtrack.db")
    try:
        expected = {name: before.count_rows(name) for name in before.tables()}
    finally:
        before.close()
    open_postgres_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as blocker, \
            psycopg.connect(pg_url, autocommit=True) as watcher:
        # Another writer on the target holds its write lock: the copy, its snapshot of the
        # workspace already taken, waits; meanwhile a register writes the workspace.
        blocker.execute("BEGIN")
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        copier = _start_copy(folder, pg_url)
        try:
            _wait_for(watcher, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                               "NOT granted", copier)
            writer = subprocess.run([sys.executable, "-m", "devtrack", "register",
                                     str(mlp_tflite), "-m", "kws", "-v", "2.0", "-w",
                                     str(folder)], capture_output=True, text=True, timeout=60)
        finally:
            blocker.execute("COMMIT")
        out, err = copier.communicate(timeout=120)
    assert writer.returncode == 0, writer.stderr  # the copy's read did not block it
    assert copier.returncode == 0, err
    assert json.loads(out)["rows"] == expected  # the snapshot, without the new release
    store = open_postgres_store(pg_url)
    try:
        assert _counts(store) == expected
        assert store.verify_events() is None
    finally:
        store.close()


def test_two_copies_at_once_write_the_target_once(source_ws: Path, pg_url: str) -> None:
    racers = [subprocess.Popen([sys.executable, "-m", "devtrack", "db", "copy", "--to",
                                pg_url, "-w", str(source_ws)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((r.wait(timeout=120), r.communicate(timeout=30)[1]) for r in racers)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "is not empty" in outcomes[1][1] or "busy" in outcomes[1][1], outcomes[1][1]
    source = open_store(source_ws / DOT_DIR / "devtrack.db")
    store = open_postgres_store(pg_url)
    try:
        assert _counts(store) == {name: source.count_rows(name) for name in source.tables()}
    finally:
        source.close()
        store.close()


def _shape(*references: str) -> TableShape:
    return TableShape(("id",), ("id",), frozenset(references))


def test_copy_order_writes_referenced_tables_first() -> None:
    shapes = {"runs": _shape("releases"), "releases": _shape("models", "releases"),
              "models": _shape(), "evaluations": _shape("runs", "releases"), "meta": _shape()}
    order = copy_order(shapes)
    assert order == ["meta", "models", "releases", "runs", "evaluations"]
    with pytest.raises(DatabaseError, match="cycle"):
        copy_order({"a": _shape("b"), "b": _shape("a")})
