"""Which database a workspace holds: a foreign SQLite file, a lost or inconsistent devtrack
database, an older schema. Each gets a message saying what is wrong; nothing is touched."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from devtrack.store import MIGRATIONS, SCHEMA_VERSION
from devtrack.workspace import DOT_DIR
from tests.test_cli_errors import assert_clean_error


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: a journal or -wal file appearing counts."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _foreign_workspace(tmp_path: Path, user_version: int, tables: tuple[str, ...]) -> Path:
    root = tmp_path / "ws"
    (root / DOT_DIR).mkdir(parents=True)
    conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
    for table in tables:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO people (name) VALUES ('ada')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    return root


@pytest.mark.parametrize(("user_version", "tables"), [
    (0, ("people",)),
    (7, ("people", "meta")),  # another app's meta table and version: still not devtrack's
    (2, ("people", "models", "runs")),
])
@pytest.mark.parametrize("command", [("releases",), ("log",), ("show", "kws@1"),
                                     ("register", "x.onnx", "-m", "kws", "-v", "1"),
                                     ("init", ".")])
def test_a_foreign_sqlite_file_is_refused_and_left_byte_for_byte(
        tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, user_version: int,
        tables: tuple[str, ...], command: tuple[str, ...]) -> None:
    root = _foreign_workspace(tmp_path, user_version, tables)
    monkeypatch.chdir(root)
    before = _files(root)
    result = run_cli(*command)
    assert_clean_error(result, "is an SQLite database but not a devtrack one", "people",
                       "left it untouched")
    assert _files(root) == before


def test_an_older_devtrack_schema_is_still_upgraded_on_open(tmp_path: Path, run_cli) -> None:
    root = tmp_path / "ws"
    (root / DOT_DIR).mkdir(parents=True)
    path = root / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        migration(db)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.close()
    result = run_cli("releases", "-w", root)
    assert result.exit_code == 0, result.err
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_concurrent_first_opens_of_an_older_schema_all_succeed(tmp_path: Path) -> None:
    """Several CI jobs opening a workspace an upgraded devtrack sees for the first time: one
    migrates, the others wait for the lock and must not run the same migration again."""
    root = tmp_path / "ws"
    (root / DOT_DIR).mkdir(parents=True)
    path = root / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        migration(db)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    jobs = [subprocess.Popen([sys.executable, "-m", "devtrack", "releases", "-w", str(root)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(6)]
    errors = [job.communicate(timeout=60)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0] * 6, errors
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_an_upgrade_that_cannot_run_says_where_it_stopped(tmp_path: Path, run_cli) -> None:
    root = tmp_path / "ws"
    (root / DOT_DIR).mkdir(parents=True)
    path = root / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        migration(db)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("DROP TABLE models")  # damaged: schema 3's ALTER TABLE models cannot run
    conn.execute("PRAGMA journal_mode = WAL")  # as devtrack always creates them
    conn.close()
    before = _files(root)
    assert_clean_error(run_cli("releases", "-w", root), "could not upgrade",
                       f"from schema 2 to {SCHEMA_VERSION}", "no such table", "left at schema 2")
    assert _files(root) == before


@pytest.mark.parametrize(("lowered", "needle"), [
    (2, "deployments"),
    (0, "PRAGMA user_version = 3"),
])
def test_a_lowered_user_version_is_named_not_migrated(ws_dir: Path, run_cli, lowered: int,
                                                      needle: str) -> None:
    path = ws_dir / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute(f"PRAGMA user_version = {lowered}")
    conn.close()
    before = _files(ws_dir / DOT_DIR)
    result = run_cli("releases", "-w", ws_dir)
    assert_clean_error(result, f"says schema version {lowered}", "inconsistent with its tables",
                       "nothing was changed", needle)
    assert "already exists" not in result.err
    assert _files(ws_dir / DOT_DIR) == before


def test_a_schema_1_database_whose_version_was_zeroed_names_version_1(
        tmp_path: Path, run_cli) -> None:
    root = tmp_path / "ws"
    (root / DOT_DIR).mkdir(parents=True)
    conn = sqlite3.connect(root / DOT_DIR / "devtrack.db", isolation_level=None)
    MIGRATIONS[0](sqlite_utils.Database(conn))  # schema 1's tables, user_version left at 0
    conn.close()
    before = _files(root)
    assert_clean_error(run_cli("log", "-w", root), "says schema version 0",
                       "PRAGMA user_version = 1")
    assert _files(root) == before


def _drop_database(root: Path) -> None:
    for name in ("devtrack.db", "devtrack.db-wal", "devtrack.db-shm"):
        (root / DOT_DIR / name).unlink(missing_ok=True)


def test_a_workspace_whose_database_is_gone_says_so(ws_dir: Path, run_cli,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _drop_database(ws_dir)
    (ws_dir / "models").mkdir()
    for where, args in ((ws_dir, ()), (ws_dir / "models", ()), (Path("/"), ("-w", ws_dir))):
        monkeypatch.chdir(where)
        result = run_cli(*args, "releases")
        assert_clean_error(result, f"{ws_dir / DOT_DIR} has no database", "devtrack.db is missing",
                           "restore", f"devtrack init {ws_dir}")
        assert "not inside a devtrack workspace" not in result.err
    monkeypatch.chdir(ws_dir)
    assert run_cli("init").exit_code == 0  # the recovery the message offers
    assert run_cli("releases").exit_code == 0


def test_a_lost_database_is_not_skipped_for_a_workspace_further_up(
        ws_dir: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = ws_dir / "sub"
    run_cli("init", inner)
    _drop_database(inner)
    monkeypatch.chdir(inner)
    assert_clean_error(run_cli("releases"), f"{inner / DOT_DIR} has no database")


# -- rollback with nothing deployed (item 14) -----------------------------------------------


@pytest.mark.parametrize("extra", [("--dry-run",), ("--reason", "incident 12")])
def test_rollback_with_nothing_deployed_exits_1_as_documented(
        in_ws: Path, mlp_onnx: Path, run_cli, extra: tuple[str, ...]) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    from tests.conftest import snapshot_workspace

    before = snapshot_workspace(in_ws)
    result = run_cli("rollback", "kws", "--profile", "ci-host", *extra)
    assert result.exit_code == 1, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert "nothing of kws is deployed on ci-host" in lines[0]
    assert "devtrack deploy kws@VERSION --profile ci-host" in lines[0]
    assert snapshot_workspace(in_ws) == before
    as_json = run_cli("rollback", "kws", "--profile", "ci-host", "--json", *extra)
    assert as_json.exit_code == 1
    assert json.loads(as_json.out)["current"] is None and json.loads(as_json.out)["target"] is None


# -- user input echoed in errors (item 14) --------------------------------------------------

LONG = "a" * 10_000


@pytest.mark.parametrize("args", [
    ("register", "{model}", "-m", LONG, "-v", "1"),
    ("register", "{model}", "-m", "kws", "-v", LONG),
    ("register", "{model}", "-m", "kws", "-v", "2", "--parent", LONG),
    ("register", "{model}", "-m", "kws", "-v", "2", "--tag", LONG),
    ("register", "{model}", "-m", "kws", "-v", "2", "--input", LONG),
    ("register", "{model}", "-m", "kws", "-v", "2", "--fill", f"{LONG}=1"),
    ("register", "{model}", "-m", "kws", "-v", "2", "--fill", f"sr={LONG}"),
    ("releases", LONG),
    ("show", LONG),
    ("show", f"kws@{LONG}"),
    ("bench", "kws@1.0", "--profile", LONG),
    ("dataset", "add", "{model}", "--name", LONG),
    ("dataset", "default", "kws", LONG),
    ("rollback", "kws", "--profile", "ci-host", "--to", LONG, "--dry-run"),
    ("trend", "kws", "--profile", "ci-host", "--metric", LONG),
    ("log", LONG),
    ("promote", "kws@1.0", "--to", LONG, "--reason", "x"),
    ("register", f"/tmp/{LONG}.onnx", "-m", "kws", "-v", "3"),
])
def test_a_10000_character_name_is_clipped_in_the_error(in_ws: Path, mlp_onnx: Path, run_cli,
                                                        args: tuple[str, ...]) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    result = run_cli(*(a.replace("{model}", str(mlp_onnx)) for a in args))
    assert result.exit_code == 2, result.err
    line = result.err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert len(line) < 500, line[:200]
    assert "characters)" in line and "…" in line
