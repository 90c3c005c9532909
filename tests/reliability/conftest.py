"""Helpers for the reliability battery: real devtrack processes raced and killed on one
workspace, and the checks every round ends with."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtrack.artifacts import sha256_file
from devtrack.cli import main
from devtrack.workspace import DOT_DIR, open_workspace

# Rounds of each race or kill: a few in CI, many with DEVTRACK_LONG_TESTS=1.
LONG = os.environ.get("DEVTRACK_LONG_TESTS") == "1"
PROCESS_TIMEOUT_S = 180.0
TINY_PROFILE = """
name = "tiny"
description = "fast settings for the reliability tests"
formats = ["onnx", "tflite"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = 0.05
max_time_s = 0.3
target_rel_ci = 0.5
"""

# Imports the CLI, says it is ready, waits for the barrier file, then runs the CLI as
# `python -m devtrack` would: every racer has paid Python's start-up by then, so they hit
# the workspace together.
_LAUNCHER = """
import sys, time
from pathlib import Path
from devtrack.cli import main
barrier, ready = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + 60
while not barrier.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
sys.exit(main(sys.argv[3:]))
"""


def rounds(short: int, long: int) -> int:
    return long if LONG else short


@dataclass
class Done:
    args: list[str]
    code: int
    out: str
    err: str


@dataclass
class Arena:
    """A workspace, the environment its devtrack processes run with, and its temp folder."""

    root: Path
    tmp: Path
    env: dict[str, str]

    def popen(self, *args: str | os.PathLike[str]) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "devtrack", *map(str, args)],
                                env=self.env, cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, *args: str | os.PathLike[str]) -> Done:
        proc = self.popen(*args)
        out, err = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        return Done([str(a) for a in args], proc.returncode, out, err)

    def race(self, commands: list[list[str]]) -> list[Done]:
        """Start every command, let them all go at once, and wait for all."""
        barrier = self.tmp / f"barrier-{time.monotonic_ns()}"
        ready = [barrier.with_name(f"{barrier.name}.ready{i}") for i in range(len(commands))]
        procs = [subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(barrier), str(flag),
                                   *cmd], env=self.env, cwd=self.root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for cmd, flag in zip(commands, ready, strict=True)]
        wait_for(lambda: all(flag.exists() for flag in ready), timeout_s=60)
        barrier.touch()
        done = []
        for cmd, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=PROCESS_TIMEOUT_S)
            done.append(Done(cmd, proc.returncode, out, err))
        return done

    def kill_during(self, args: list[str], max_delay_s: float, rng: random.Random) -> Done:
        """Start ``devtrack ARGS`` and SIGKILL it after a random delay (if still running)."""
        proc = self.popen(*args)
        time.sleep(rng.uniform(0.0, max_delay_s))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        return Done(args, proc.returncode, out, err)


@pytest.fixture
def arena(ws_dir: Path, tmp_path: Path) -> Arena:
    tmp = tmp_path / "tmp"  # this test's own temp folder: other suites' runs stay apart
    tmp.mkdir()
    (ws_dir / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    env = {**os.environ, "DEVTRACK_WORKSPACE": str(ws_dir), "DEVTRACK_USER": "racer",
           "TMPDIR": str(tmp), "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return Arena(ws_dir, tmp, env)


@pytest.fixture(scope="session")
def big_onnx(model_dir: Path) -> Path:
    """A ~4 MB model: copying it into the store takes long enough to race and to kill."""
    from devtrack.builders.onnx_models import build_mlp

    path = model_dir / "big.onnx"
    build_mlp(path, in_features=1024, hidden=(1024,), classes=4, seed=7)
    return path


def assert_one_line_error(done: Done, *fragments: str) -> None:
    """Exit 2, one line on stderr naming every fragment, no traceback."""
    assert done.code == 2, (done.args, done.code, done.err)
    assert "Traceback" not in done.err, done.err
    lines = [ln for ln in done.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_sound(arena: Arena) -> None:
    """After any race or kill: the database is intact, the audit trail verifies, every file
    a row references is in the store with its bytes, and gc leaves no leftovers."""
    from devtrack.garbage import find_leftovers

    db = arena.root / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert main(["-w", str(arena.root), "audit", "verify"]) == 0
    with open_workspace(arena.root) as ws:
        hashes = {r["h"] for r in ws.store.query(
            "SELECT artifact_sha256 AS h FROM releases UNION SELECT sha256 FROM datasets")}
        for sha in hashes:
            path = ws.artifacts.path_for(sha)
            assert path.is_file(), f"referenced file {sha[:12]} is missing from the store"
            assert sha256_file(path) == sha, f"stored file {sha[:12]} was modified"
        system_temp = tempfile.tempdir
        tempfile.tempdir = str(arena.tmp)  # where this arena's devtrack processes write
        try:
            assert main(["-w", str(arena.root), "gc", "--json"]) == 0
        finally:
            tempfile.tempdir = system_temp
        left = find_leftovers(ws, temp_dir=arena.tmp)
        assert left == [], [x.to_dict() for x in left]


def releases(arena: Arena) -> set[str]:
    with open_workspace(arena.root) as ws:
        return {f"{r['model']}@{r['version']}" for r in ws.store.query(
            "SELECT m.name AS model, r.version FROM releases r JOIN models m "
            "ON m.id = r.model_id")}


def events(arena: Arena, kind: str) -> list[dict[str, Any]]:
    with open_workspace(arena.root) as ws:
        return [{**e, "payload": json.loads(e["payload"])} for e in ws.store.events(kind=kind)]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
