"""A workspace on a PostgreSQL server (DEVTRACK_DATABASE_URL or init --database) and a shared
artifact store (DEVTRACK_ARTIFACTS_URL or init --artifacts), against a real server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pgserver import PgServer, free_port

from devtrack.workspace_config import ARTIFACTS_VARIABLE, DATABASE_VARIABLE

Cli = Callable[..., Any]


def _one_line_refusal(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, (result.out, result.err)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    for fragment in fragments:
        assert fragment in result.err, result.err


def _tables(pg_server: PgServer, database: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg_server.url(database), connect_timeout=10) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                            "table_schema = 'public' ORDER BY table_name").fetchall()
    return [str(r[0]) for r in rows]


def _runner_folder(tmp_path: Path, name: str) -> Path:
    """A CI runner's checkout: device_profiles/ and nothing else."""
    from devtrack.profiles import copy_shipped_profiles

    folder = tmp_path / name
    copy_shipped_profiles(folder / "device_profiles")
    return folder


def test_init_database_records_the_url_and_creates_no_sqlite_file(
        tmp_path: Path, pg_url: str, run_cli: Cli, mlp_onnx: Path) -> None:
    root = tmp_path / "team"
    result = run_cli("init", root, "--database", pg_url)
    assert result.exit_code == 0, result.err
    assert not (root / ".devtrack" / "devtrack.db").exists()
    assert f'url = "{pg_url}"' in (root / ".devtrack" / "config.toml").read_text()
    assert sorted(p.name for p in (root / "device_profiles").glob("*.toml"))
    registered = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0", "--notes", "n",
                         "-w", root)
    assert registered.exit_code == 0, registered.err
    assert not (root / ".devtrack" / "devtrack.db").exists()
    info = run_cli("info", "-w", root, "--json")
    data = json.loads(info.out)
    assert data["backend"] == "postgresql" and data["database"] == pg_url
    assert data["database_from"] == ".devtrack/config.toml" and data["schema_version"] == 1
    listed = run_cli("releases", "kws", "--json", "-w", root)
    assert [r["version"] for r in json.loads(listed.out)] == ["1.0.0"]
    assert run_cli("init", root, "--database", pg_url).exit_code == 0  # again: no change


def test_the_environment_alone_makes_a_folder_a_workspace(
        tmp_path: Path, pg_url: str, run_cli: Cli, mlp_onnx: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner_folder(tmp_path, "runner")
    monkeypatch.setenv(DATABASE_VARIABLE, pg_url)
    monkeypatch.chdir(runner)
    result = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0", "--notes", "n")
    assert result.exit_code == 0, result.err
    info = run_cli("info")
    assert info.exit_code == 0, info.err
    assert f"database   {pg_url} (PostgreSQL, schema 1; from ${DATABASE_VARIABLE})" in info.out
    assert not list(tmp_path.rglob("*.db"))


def test_info_masks_a_password_given_in_the_environment(
        pg_server: PgServer, pg_url: str, tmp_path: Path, run_cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_password = pg_url.replace("devtrack@", f"devtrack:{pg_server.password}@")
    monkeypatch.setenv(DATABASE_VARIABLE, with_password)
    result = run_cli("info", "-w", _runner_folder(tmp_path, "r"))
    assert result.exit_code == 0, result.err
    assert pg_server.password not in result.out and "devtrack:***@" in result.out


def test_init_refuses_a_url_with_a_password_and_writes_nothing(
        tmp_path: Path, pg_server: PgServer, pg_url: str, run_cli: Cli) -> None:
    root = tmp_path / "team"
    with_password = pg_url.replace("devtrack@", f"devtrack:{pg_server.password}@")
    result = run_cli("init", root, "--database", with_password)
    _one_line_refusal(result, "PGPASSWORD", "~/.pgpass", "service file")
    assert pg_server.password not in result.err
    assert not root.exists()
    assert _tables(pg_server, pg_url.rsplit("/", 1)[1]) == []


@pytest.mark.parametrize("url, fragment", [
    ("postgresql://devtrack@127.0.0.1:{port}/x", "cannot reach the PostgreSQL server"),
    ("mysql://devtrack@127.0.0.1/x", "is not a PostgreSQL URL"),
    ("postgresql://devtrack@127.0.0.1:99999/x", "bad host or port"),
])
def test_an_unreachable_or_malformed_database_is_one_line_and_nothing_written(
        tmp_path: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch, pg_server: PgServer,
        url: str, fragment: str) -> None:
    url = url.format(port=free_port())
    root = tmp_path / "team"
    _one_line_refusal(run_cli("init", root, "--database", url), fragment)
    assert not root.exists()
    runner = _runner_folder(tmp_path, "runner")
    monkeypatch.setenv(DATABASE_VARIABLE, url)
    _one_line_refusal(run_cli("info", "-w", runner), fragment)
    _one_line_refusal(run_cli("releases", "-w", runner), fragment)
    assert sorted(p.name for p in runner.iterdir()) == ["device_profiles"]


def test_wrong_credentials_are_refused_in_one_line(
        tmp_path: Path, pg_server: PgServer, pg_url: str, run_cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")  # libpq prefers it to the passfile
    root = tmp_path / "team"
    _one_line_refusal(run_cli("init", root, "--database", pg_url), "refused the credentials")
    assert not root.exists()
    monkeypatch.setenv(DATABASE_VARIABLE, pg_url)
    result = run_cli("info", "-w", _runner_folder(tmp_path, "r"))
    _one_line_refusal(result, "refused the credentials")
    assert "not-the-password" not in result.err
    monkeypatch.delenv("PGPASSWORD")
    stranger = pg_url.replace("devtrack@", "stranger@")
    monkeypatch.setenv(DATABASE_VARIABLE, stranger)  # no password for this user anywhere
    _one_line_refusal(run_cli("info", "-w", tmp_path / "r"), "refused the credentials")


def test_a_database_of_another_application_is_refused_untouched(
        tmp_path: Path, pg_server: PgServer, run_cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    name = pg_server.fresh_database()
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE TABLE customers (id INT PRIMARY KEY, name TEXT)")
            conn.execute("CREATE TABLE events (id INT PRIMARY KEY)")  # a name devtrack uses
            conn.execute("INSERT INTO customers VALUES (1, 'ada')")
        root = tmp_path / "team"
        _one_line_refusal(run_cli("init", root, "--database", pg_server.url(name)),
                          "not devtrack's", "customers")
        assert not root.exists()
        monkeypatch.setenv(DATABASE_VARIABLE, pg_server.url(name))
        _one_line_refusal(run_cli("register", tmp_path / "nope.onnx", "-m", "m", "-v", "1",
                                  "-w", _runner_folder(tmp_path, "r")), "not devtrack's")
        assert _tables(pg_server, name) == ["customers", "events"]
    finally:
        pg_server.drop_database(name)


def test_a_newer_schema_is_refused_untouched(
        tmp_path: Path, pg_server: PgServer, pg_url: str, run_cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from devtrack.postgres.backend import open_postgres_store

    open_postgres_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("INSERT INTO devtrack_schema VALUES (99, 't', '9.9')")
    monkeypatch.setenv(DATABASE_VARIABLE, pg_url)
    runner = _runner_folder(tmp_path, "r")
    _one_line_refusal(run_cli("info", "-w", runner), "newer devtrack (schema 99")
    _one_line_refusal(run_cli("init", runner), "newer devtrack (schema 99")
    with psycopg.connect(pg_url, connect_timeout=10) as conn:
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone() == (0,)
        assert conn.execute("SELECT MAX(version) FROM devtrack_schema").fetchone() == (99,)
    assert not (runner / ".devtrack").exists()


def test_a_missing_database_says_to_create_it(
        tmp_path: Path, pg_server: PgServer, run_cli: Cli) -> None:
    result = run_cli("init", tmp_path / "t", "--database", pg_server.url("no_such_db"))
    _one_line_refusal(result, "does not exist", "createdb")
    assert not (tmp_path / "t").exists()


def test_init_database_refuses_a_folder_with_its_own_sqlite_database(
        ws_dir: Path, pg_url: str, run_cli: Cli) -> None:
    _one_line_refusal(run_cli("init", ws_dir, "--database", pg_url), "its own SQLite database")
    assert not (ws_dir / ".devtrack" / "config.toml").exists()


def test_a_shared_artifact_directory_serves_every_runner(
        tmp_path: Path, pg_url: str, run_cli: Cli, mlp_onnx: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv(DATABASE_VARIABLE, pg_url)
    monkeypatch.setenv(ARTIFACTS_VARIABLE, str(shared))
    first, second = _runner_folder(tmp_path, "one"), _runner_folder(tmp_path, "two")
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--notes", "n",
                   "-w", first).exit_code == 0
    assert len(list((shared / "artifacts" / "sha256").glob("*/*"))) == 1
    verified = run_cli("audit", "verify", "-w", second, "--json")
    assert verified.exit_code == 0, verified.out + verified.err
    assert json.loads(verified.out)["files"]["files"] == 1
    info = json.loads(run_cli("info", "-w", second, "--json").out)
    assert (info["artifacts_kind"], info["artifacts"]) == ("directory", str(shared))
    shutil.rmtree(shared)
    _one_line_refusal(run_cli("info", "-w", second), "is not a directory", ARTIFACTS_VARIABLE)


def test_init_artifacts_records_a_directory_and_creates_it(
        tmp_path: Path, run_cli: Cli, pg_url: str) -> None:
    shared = tmp_path / "mnt" / "models"
    root = tmp_path / "team"
    result = run_cli("init", root, "--database", pg_url, "--artifacts", shared)
    assert result.exit_code == 0, result.err
    assert (shared / "artifacts" / "sha256").is_dir()
    assert not (root / ".devtrack" / "artifacts").exists()
    info = json.loads(run_cli("info", "-w", root, "--json").out)
    assert (info["artifacts_kind"], info["artifacts"]) == ("directory", str(shared))
    assert info["artifacts_from"] == ".devtrack/config.toml"


@pytest.mark.parametrize("artifacts, fragment", [
    ("ftp://host/x", "not supported"),
    ("s3://", "names no bucket"),
])
def test_init_refuses_a_bad_artifacts_location(tmp_path: Path, run_cli: Cli, artifacts: str,
                                               fragment: str) -> None:
    _one_line_refusal(run_cli("init", tmp_path / "t", "--artifacts", artifacts), fragment)
    assert not (tmp_path / "t").exists()


def test_init_refuses_artifacts_on_a_file(tmp_path: Path, run_cli: Cli) -> None:
    (tmp_path / "f").write_text("x")
    _one_line_refusal(run_cli("init", tmp_path / "t", "--artifacts", tmp_path / "f"),
                      "not a directory")
    assert not (tmp_path / "t").exists()


def test_info_on_a_sqlite_workspace(ws_dir: Path, run_cli: Cli) -> None:
    data = json.loads(run_cli("info", "-w", ws_dir, "--json").out)
    assert data["backend"] == "sqlite" and data["schema_version"] == 4
    assert data["database"] == str(ws_dir / ".devtrack" / "devtrack.db")
    assert (data["artifacts_kind"], data["artifacts"]) == (
        "local", str(ws_dir / ".devtrack" / "artifacts"))
    from devtrack import __version__

    assert data["devtrack_version"] == __version__


@pytest.mark.parametrize("text, fragment", [
    ('[database]\nurl = 5\n', "[database] must hold exactly one key"),
    ('[database]\nurl = "postgresql://a@b/c"\nuser = "x"\n', "exactly one key"),
    ('[databse]\nurl = "postgresql://a@b/c"\n', "databse: unknown table"),
    ('[artifacts]\nurl = "ftp://x/y"\n', "is not supported"),
    ('[database]\nurl = "mysql://a@b/c"\n', "is not a PostgreSQL URL"),
    ('[database\n', "invalid TOML"),
])
def test_a_bad_workspace_config_is_one_line_exit_2(ws_dir: Path, run_cli: Cli, text: str,
                                                   fragment: str) -> None:
    (ws_dir / ".devtrack" / "config.toml").write_text(text)
    _one_line_refusal(run_cli("info", "-w", ws_dir), fragment)


def test_with_the_url_a_command_finds_the_checkout_from_a_subfolder(
        tmp_path: Path, pg_url: str, run_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner_folder(tmp_path, "runner")
    deep = runner / "src" / "models"
    deep.mkdir(parents=True)
    monkeypatch.setenv(DATABASE_VARIABLE, pg_url)
    monkeypatch.chdir(deep)
    assert json.loads(run_cli("info", "--json").out)["workspace"] == str(runner)
    monkeypatch.delenv(DATABASE_VARIABLE)  # without it the checkout is no workspace
    _one_line_refusal(run_cli("info"), "not inside a devtrack workspace")
