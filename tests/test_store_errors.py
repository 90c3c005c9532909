"""Database failures leave the store as devtrack errors (one line, exit 2), never as sqlite3's."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from devtrack import store as store_module
from devtrack.errors import DatabaseError, DatabaseLockedError
from devtrack.store import create_store
from devtrack.workspace import DOT_DIR, open_workspace


def _event_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def test_a_write_lock_held_too_long_is_a_locked_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "d.db"
    db = create_store(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLockedError, match="locked by another devtrack process"), \
                db.transaction():
            db.append_event(actor="a", kind="register", model="m", version="1", payload={})
    finally:
        holder.rollback()
        holder.close()
    assert _event_count(path) == 0
    db.close()


def test_a_failure_inside_a_transaction_rolls_back_and_names_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.db"
    db = create_store(path)
    with pytest.raises(DatabaseError, match=r"^the workspace database failed: disk I/O error$"), \
            db.transaction():
        db.append_event(actor="a", kind="register", model="m", version="1", payload={})
        raise sqlite3.OperationalError("disk I/O error")  # what a failing disk raises mid-way
    assert _event_count(path) == 0
    with pytest.raises(DatabaseError, match="no such table: nowhere"):
        db.query("SELECT * FROM nowhere")
    db.close()


def test_a_finished_measurement_waits_out_a_brief_lock_and_is_stored(
    in_ws: Path, mlp_onnx: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtrack.benchmarking import BenchOverrides, list_runs, plan, store_run
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release

    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)  # each attempt waits 0.2 s
    ws = open_workspace(in_ws)
    release = get_release(ws, "kws@1")
    (measurement,), _ = plan([release], [load_profile("ci-host", in_ws)], BenchOverrides(), ws)
    holder = sqlite3.connect(in_ws / DOT_DIR / "devtrack.db", isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_soon() -> None:  # another devtrack finishing its write
        time.sleep(0.3)
        holder.rollback()
        released.set()

    thread = threading.Thread(target=release_soon)
    thread.start()
    try:
        run_id = store_run(ws, measurement, {"status": "failed", "error": "test"}, "t0")
    finally:
        thread.join(timeout=10)
        holder.close()
    assert released.is_set()
    assert [r["run_id"] for r in list_runs(ws, release)] == [run_id]
    ws.close()
