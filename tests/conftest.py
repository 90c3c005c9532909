"""Shared fixtures: a fresh workspace (on SQLite, or on both backends for modules marked
``both_backends``), the CLI runner, tiny real models, workspace snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtrack.cli import main
from devtrack.workspace import DOT_DIR, init_workspace
from devtrack.workspace_config import config_path, database_setting

# A throwaway PostgreSQL server (pg_server) and a fresh database per test (pg_url); a
# throwaway SSH device on 127.0.0.1 (ssh_lab).
pytest_plugins = ["pgserver", "sshserver"]

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_backends: run the test on a SQLite and on a PostgreSQL workspace "
        "(the fixtures ws_dir, workspaces and module_workspaces follow the backend)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_backends`` that uses a workspace runs once per backend."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
            "both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test's workspaces: sqlite unless parametrised."""
    return str(getattr(request, "param", "sqlite"))


class WorkspaceFactory:
    """Creates and copies workspaces on one backend. A PostgreSQL workspace records its own
    database in .devtrack/config.toml (init --database), each a copy of a migrated template
    database (CREATE DATABASE … TEMPLATE, cheaper than migrating each); a copied workspace
    gets a copy of its database. The databases are dropped by :meth:`close`."""

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self._request = request
        self._databases: list[str] = []

    @property
    def server(self) -> Any:
        return self._request.getfixturevalue("pg_server")

    def _database(self, template: str, keep: bool = False) -> str:
        name = self.server.fresh_database(template=template)
        if not keep:
            self._databases.append(name)
        return str(self.server.url(name))

    def init(self, root: Path, *, keep: bool = False) -> Path:
        """A new workspace at ``root``; ``keep``: its database outlives this factory (a
        template shared by the session)."""
        database = None
        if self.backend == "postgresql":
            database = self._database(self._request.getfixturevalue("pg_template"), keep)
        ws, _ = init_workspace(root, database=database)
        ws.close()
        return root

    def copy(self, template: Path, dest: Path) -> Path:
        """``template``'s folder copied to ``dest``, and its database with it."""
        shutil.copytree(template, dest)
        setting = database_setting(template)
        if setting is not None and setting.source != "$DEVTRACK_DATABASE_URL":
            url = self._database(setting.value.rsplit("/", 1)[1])
            path = config_path(dest)
            path.write_text(path.read_text().replace(setting.value, url))
        return dest

    def close(self) -> None:
        for name in self._databases:
            self.server.drop_database(name)


@pytest.fixture(scope="session")
def pg_template(pg_server: Any) -> str:
    """A migrated, empty devtrack database that fresh PostgreSQL workspaces are copied from."""
    from devtrack.postgres.backend import open_postgres_store

    name = "devtrack_template"
    pg_server.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    open_postgres_store(pg_server.url(name)).close()
    return name


@pytest.fixture
def workspaces(backend: str, request: pytest.FixtureRequest) -> Iterator[WorkspaceFactory]:
    """Workspaces on this test's backend, gone after the test."""
    factory = WorkspaceFactory(backend, request)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_workspaces(backend: str, request: pytest.FixtureRequest
                      ) -> Iterator[WorkspaceFactory]:
    """Workspaces on the module's backend that its tests share (templates to copy)."""
    factory = WorkspaceFactory(backend, request)
    yield factory
    factory.close()


@dataclass
class CliResult:
    exit_code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own workspace, user name or terminal width."""
    monkeypatch.delenv("DEVTRACK_WORKSPACE", raising=False)
    monkeypatch.delenv("DEVTRACK_ARTIFACTS_URL", raising=False)  # nor their bucket
    monkeypatch.delenv("DEVTRACK_DATABASE_URL", raising=False)  # nor their team database
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("DEVTRACK_USER", "tester")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def ws_dir(tmp_path: Path, workspaces: WorkspaceFactory) -> Path:
    return workspaces.init(tmp_path / "ws")


@pytest.fixture
def in_ws(ws_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from inside the workspace folder, as a user would."""
    monkeypatch.chdir(ws_dir)
    return ws_dir


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def mlp_onnx(model_dir: Path) -> Path:
    from devtrack.builders.onnx_models import build_mlp

    path = model_dir / "mlp.onnx"
    build_mlp(path, in_features=16, hidden=(8,), classes=4, seed=0)
    return path


@pytest.fixture(scope="session")
def mlp_onnx_b(model_dir: Path) -> Path:
    from devtrack.builders.onnx_models import build_mlp

    path = model_dir / "mlp_b.onnx"
    build_mlp(path, in_features=16, hidden=(8,), classes=4, seed=1)
    return path


@pytest.fixture(scope="session")
def mlp_tflite(model_dir: Path) -> Path:
    from devtrack.builders.tflite_models import build_tflite_mlp

    path = model_dir / "mlp.tflite"
    build_tflite_mlp(path, in_features=16, hidden=(8,), classes=4, seed=0)
    return path


@pytest.fixture(scope="session")
def dynamic_onnx(model_dir: Path) -> Path:
    from devtrack.builders.onnx_models import build_dynamic_with_scalar

    path = model_dir / "dynamic.onnx"
    build_dynamic_with_scalar(path)
    return path


def _database_dump(root: Path) -> str:
    """Every row of every table, in order, read with the backend's own driver."""
    sqlite_file = root / DOT_DIR / "devtrack.db"
    setting = None if sqlite_file.is_file() else database_setting(root)  # a config under test
    if setting is None:
        conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(setting.value, connect_timeout=10) as pg:
        tables = [r[0] for r in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() ORDER BY table_name").fetchall()]
        lines = []
        for table in tables:
            lines.append(f"-- {table}")
            lines += [repr(row) for row in pg.execute(
                f'SELECT * FROM "{table}" ORDER BY 1').fetchall()]  # type: ignore[arg-type]
    return "\n".join(lines)


def raw_sql(root: Path, *statements: str) -> list[tuple[Any, ...]]:
    """What someone with the database's own client (sqlite3, psql) could do to a workspace:
    the statements in one transaction, outside devtrack; the last one's rows."""
    setting = None if (root / DOT_DIR / "devtrack.db").is_file() else database_setting(root)
    if setting is None:
        conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
        try:
            with conn:
                for statement in statements:
                    cursor = conn.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(setting.value, connect_timeout=10) as pg:
        for statement in statements:
            cursor = pg.execute(_as_psql(statement))  # type: ignore[arg-type]
        return list(cursor.fetchall()) if cursor.description else []


def _as_psql(statement: str) -> str:
    """The same edit as psql would be typed: foreign keys switched off for the session
    (the test server's user is a superuser), a dropped table taking its foreign keys with
    it, a blob literal as bytea."""
    import re

    if statement.strip().upper() == "PRAGMA FOREIGN_KEYS = OFF":
        return "SET session_replication_role = replica"
    statement = re.sub(r"^(DROP TABLE \w+)$", r"\1 CASCADE", statement.strip())
    return re.sub(r"X'([0-9a-fA-F]*)'", r"'\\x\1'::bytea", statement)


def snapshot_workspace(root: Path) -> dict[str, str]:
    """Logical content of a workspace: every table's rows and every stored file's hash."""
    state: dict[str, str] = {"db": _database_dump(root)}
    dot = root / DOT_DIR
    for path in sorted((dot / "artifacts").rglob("*")):
        if path.is_file():
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def unchanged(ws_dir: Path) -> Iterator[Callable[[], None]]:
    """Call the yielded function to assert the workspace is exactly as at the fixture's start."""
    before = snapshot_workspace(ws_dir)

    def check() -> None:
        assert snapshot_workspace(ws_dir) == before

    yield check
