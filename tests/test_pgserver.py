"""The test cluster itself: under CI a server that cannot start fails the run, never skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pgserver import PgServer

TESTS = Path(__file__).resolve().parent

_NEEDS_SERVER = """
def test_needs_postgres(pg_url):
    assert pg_url.startswith("postgresql://")
"""


def _pytest_without_server(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["pgserver"]\n')
    (tmp_path / "test_probe.py").write_text(_NEEDS_SERVER)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"DEVTRACK_PG_BINDIR": str(tmp_path / "no-postgres-here"),
            "PYTHONPATH": str(TESTS)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)


def test_under_ci_a_server_that_cannot_start_fails_the_tests(tmp_path: Path) -> None:
    result = _pytest_without_server(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout and "no PostgreSQL server binaries" in result.stdout


def test_elsewhere_it_skips_them_with_the_reason(tmp_path: Path) -> None:
    result = _pytest_without_server(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "no PostgreSQL server binaries" in result.stdout


def test_each_test_gets_a_fresh_empty_database(pg_server: PgServer, pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = 'public'").fetchone() == (0,)
        user = conn.execute("SELECT current_user").fetchone()
    assert user == ("devtrack",)
    assert pg_server.password not in pg_url


def test_the_cluster_never_runs_as_root(pg_server: PgServer) -> None:
    """As root (CI) the cluster runs as the postgres user; otherwise as the user running."""
    if os.geteuid() == 0:
        assert pg_server.run_as == "postgres"
    else:
        assert pg_server.run_as is None
    assert pg_server.datadir.stat().st_uid != 0


def test_a_cluster_whose_test_session_died_is_stopped_by_the_next_one(tmp_path: Path) -> None:
    """A killed pytest leaves its cluster running (pg_ctl's server outlives it): the next
    session's start stops and removes it, and leaves a live session's cluster alone."""
    import psycopg
    from pgserver import OWNER_FILE, reap_orphans, start_server

    orphan = start_server(tmp_path)
    passfile_before = os.environ.get("PGPASSFILE")
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (orphan.root / OWNER_FILE).write_text(str(dead.pid))  # its session is gone
        os.environ["PGPASSFILE"] = str(orphan.passfile)
        reap_orphans(orphan.bindir, orphan.run_as)
        assert not orphan.root.exists()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(orphan.url(), connect_timeout=3)
    finally:
        orphan.stop()
        if passfile_before is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = passfile_before


def test_a_live_sessions_cluster_is_left_alone(pg_server: PgServer) -> None:
    from pgserver import reap_orphans

    reap_orphans(pg_server.bindir, pg_server.run_as)
    assert pg_server.datadir.exists()
    pg_server.admin("SELECT 1")
