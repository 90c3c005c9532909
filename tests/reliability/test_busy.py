"""A write lock held past the busy timeout: every writer says so on one line, changes nothing."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from devtrack.workspace import DOT_DIR
from tests.test_cli_errors import assert_clean_error

WRITERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "register": lambda ws, model: ["register", str(model), "-m", "kws", "-v", "2"],
    "notes": lambda ws, model: ["notes", "kws@1", "--set", "new text"],
    "promote": lambda ws, model: ["promote", "kws@1", "--to", "approved", "--reason", "r"],
    "deploy": lambda ws, model: ["deploy", "kws@1", "-p", "ci-host", "--reason", "r",
                                 "--force"],
    "dataset add": lambda ws, model: ["dataset", "add", str(ws / "d.npz"), "--name", "d"],
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_writer_kept_waiting_past_the_busy_timeout_fails_on_one_line(
        in_ws: Path, mlp_onnx: Path, run_cli, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, writer: str) -> None:
    from devtrack import store
    from tests.conftest import snapshot_workspace

    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--notes", "n").exit_code == 0
    np.savez(in_ws / "d.npz", input=np.zeros((4, 16), np.float32))
    before = snapshot_workspace(in_ws)
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(in_ws / DOT_DIR / "devtrack.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_cli(*WRITERS[writer](in_ws, mlp_onnx))
    finally:
        holder.rollback()
        holder.close()
    assert_clean_error(result, "locked by another devtrack process", "nothing was changed")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gc: this test's temp folder
    # nothing in the database; a file a register copied before waiting is left to gc
    after = snapshot_workspace(in_ws)
    assert after["db"] == before["db"]
    assert run_cli("gc").exit_code == 0
    assert snapshot_workspace(in_ws) == before
