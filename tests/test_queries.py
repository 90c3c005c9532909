"""The library modules whose SQL lives in queries.py work on both backends: the same calls on
SQLite and on a real PostgreSQL server give the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtrack.errors import DuplicateError, NotFoundError
from devtrack.postgres.backend import open_postgres_store
from devtrack.registry import (
    RegisterRequest,
    get_release,
    list_models,
    list_releases,
    register_release,
    require_model,
)
from devtrack.store import create_store
from devtrack.workspace import DOT_DIR, Workspace


@pytest.fixture(params=["sqlite", "postgres"])
def any_ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace folder (artifacts on disk) whose database is on each backend."""
    (tmp_path / DOT_DIR / "artifacts" / "sha256").mkdir(parents=True)
    store: Any
    if request.param == "sqlite":
        store = create_store(tmp_path / DOT_DIR / "devtrack.db")
    else:
        store = open_postgres_store(request.getfixturevalue("pg_url"))
    ws = Workspace(tmp_path, store)
    try:
        yield ws
    finally:
        ws.close()


def test_registry_registers_lists_and_resolves_on_both_backends(
        any_ws: Workspace, mlp_onnx: Path, mlp_onnx_b: Path) -> None:
    first = register_release(any_ws, RegisterRequest(mlp_onnx, "kws", "1.0", notes="a"))
    second = register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.1", parent="1.0"))
    same = register_release(any_ws, RegisterRequest(mlp_onnx, "other", "1", task="other"))
    assert (first.id, second.id, same.id) == (1, 2, 3)
    assert second.parent == "1.0"
    assert get_release(any_ws, "kws@1.0").same_artifact_as == ["other@1"]
    assert [(m["model"], m["releases"], m["latest"]) for m in list_models(any_ws)] == [
        ("kws", 2, "1.1"), ("other", 1, "1")]
    assert [r.ref for r in list_releases(any_ws)] == ["kws@1.0", "kws@1.1", "other@1"]
    assert get_release(any_ws, "kws@latest").version == "1.1"
    assert require_model(any_ws, "other") == 2
    with pytest.raises(DuplicateError):
        register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.0"))
    with pytest.raises(NotFoundError, match=r"has versions: 1\.0, 1\.1"):
        get_release(any_ws, "kws@9")
    with pytest.raises(NotFoundError, match=r"parent kws@0\.9 is not registered"):
        register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "2.0", parent="0.9"))
    assert any_ws.store.verify_events() is None
    assert [e["kind"] for e in any_ws.store.events()] == ["register"] * 3
