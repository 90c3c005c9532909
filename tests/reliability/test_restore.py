"""Registering the original file again repairs a stored copy that was modified or deleted
(in-process CLI calls: nothing here races)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devtrack.artifacts import sha256_file
from devtrack.workspace import open_workspace
from tests.reliability.conftest import Arena, assert_sound, events
from tests.test_cli_errors import assert_clean_error


def _stored(arena: Arena, path: Path) -> Path:
    with open_workspace(arena.root) as ws:
        return ws.artifacts.path_for(sha256_file(path))


def _damage(stored: Path, how: str) -> None:
    if how == "missing":
        stored.unlink()
        return
    os.chmod(stored, 0o644)
    with stored.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff" * 16)


@pytest.mark.parametrize("how", ["modified", "missing"])
def test_registering_the_file_as_a_new_version_restores_the_stored_copy(
        arena: Arena, in_ws: Path, run_cli, mlp_onnx: Path, how: str) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    stored = _stored(arena, mlp_onnx)
    _damage(stored, how)
    assert run_cli("bench", "kws@1", "-p", "tiny").exit_code == 2  # refuses the damaged copy
    done = run_cli("register", mlp_onnx, "-m", "kws", "-v", "2")
    assert done.exit_code == 0, done.err
    assert f"it was {how}" in done.out and "Registered kws@2" in done.out
    assert sha256_file(stored) == sha256_file(mlp_onnx)
    restores = events(arena, "artifact_restore")
    assert [(e["version"], e["payload"]["was"]) for e in restores] == [("2", how)]
    assert_sound(arena)
    assert run_cli("bench", "kws@1", "-p", "tiny").exit_code == 0


@pytest.mark.parametrize("how", ["modified", "missing"])
def test_registering_the_same_release_again_restores_it_and_changes_nothing_else(
        arena: Arena, in_ws: Path, run_cli, mlp_onnx: Path, how: str) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    stored = _stored(arena, mlp_onnx)
    _damage(stored, how)
    done = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--json")
    assert done.exit_code == 0, done.err
    result = json.loads(done.out)
    assert (result["created"], result["restored"]) == (False, how)
    assert sha256_file(stored) == sha256_file(mlp_onnx)
    assert len(events(arena, "register")) == 1
    assert len(events(arena, "artifact_restore")) == 1
    assert_sound(arena)


def test_an_intact_release_registered_again_is_still_a_duplicate(arena: Arena, in_ws: Path,
                                                                 run_cli, mlp_onnx: Path) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1"),
                          "kws@1 is already registered")
    assert events(arena, "artifact_restore") == []


def test_another_file_under_a_damaged_release_restores_nothing(arena: Arena, in_ws: Path,
                                                               run_cli, mlp_onnx: Path,
                                                               mlp_onnx_b: Path) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    stored = _stored(arena, mlp_onnx)
    _damage(stored, "missing")
    assert_clean_error(run_cli("register", mlp_onnx_b, "-m", "kws", "-v", "1"),
                          "kws@1 is already registered")
    assert not stored.exists() and events(arena, "artifact_restore") == []
