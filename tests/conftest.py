"""Shared fixtures: a fresh workspace, the CLI runner, tiny real models, disk snapshots."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtrack.cli import main
from devtrack.workspace import DOT_DIR, init_workspace

# A throwaway PostgreSQL server (pg_server) and a fresh database per test (pg_url); a
# throwaway SSH device on 127.0.0.1 (ssh_lab).
pytest_plugins = ["pgserver", "sshserver"]


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
def ws_dir(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    ws, _ = init_workspace(root)
    ws.close()
    return root


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


def snapshot_workspace(root: Path) -> dict[str, str]:
    """Logical content of a workspace: every table's rows and every stored file's hash."""
    state: dict[str, str] = {}
    dot = root / DOT_DIR
    conn = sqlite3.connect(dot / "devtrack.db")
    try:
        state["db"] = "\n".join(conn.iterdump())
    finally:
        conn.close()
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
