"""devtrack gc: leftovers no live process owns go, what a live process owns stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtrack.artifacts import INCOMING_PREFIX
from devtrack.garbage import find_leftovers
from devtrack.workspace import open_workspace
from tests.reliability.conftest import Arena, assert_one_line_error, assert_sound

FAKE_SHA = "ab" * 32


@contextmanager
def held_elsewhere(code: str) -> Iterator[None]:
    """Another live process runs ``code`` (which takes a lock) and keeps it until the end,
    when it is killed (SIGKILL: no clean-up runs, as after kill -9)."""
    script = f"import sys\n{code}\nprint('held', flush=True)\nsys.stdin.read()\n"
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def pin_code(arena: Arena, sha: str) -> str:
    return ("from devtrack.workspace import open_workspace\n"
            f"ws = open_workspace({str(arena.root)!r})\n"
            f"pin = ws.artifacts.hold({sha!r})\n"
            "pin.__enter__()")


def run_folder_code(tmp: Path) -> str:
    return ("import os\n"
            f"os.environ['TMPDIR'] = {str(tmp)!r}\n"
            "import tempfile; tempfile.tempdir = None\n"
            "from devtrack.locks import owned_temp_dir\n"
            "owner = owned_temp_dir('devtrack-run-')\n"
            "folder = owner.__enter__()\n"
            "(folder / 'result.json').write_text('{}')")


def gc_json(arena: Arena, *extra: str) -> dict[str, object]:
    done = arena.run("gc", "--json", *extra)
    assert done.code == 0, done.err
    return dict(json.loads(done.out))


def test_gc_removes_a_dead_writers_partial_copy_and_keeps_a_live_ones(arena: Arena) -> None:
    with open_workspace(arena.root) as ws:
        shard = ws.artifacts.root / "sha256" / FAKE_SHA[:2]
    shard.mkdir(parents=True)
    partial = shard / f"{INCOMING_PREFIX}{FAKE_SHA}-x1y2"
    partial.write_bytes(b"\0" * 5000)
    with held_elsewhere(pin_code(arena, FAKE_SHA)):
        kept = gc_json(arena)
        assert partial.exists()
        assert kept["files"] == 0 and [x["path"] for x in kept["in_use"]] == [str(partial)]
    done = arena.run("gc")
    assert done.code == 0
    assert "Removed 1 leftovers: 1 files, 4.9 KiB freed" in done.out
    assert not partial.exists()


def test_gc_removes_a_killed_runs_temp_folder_and_keeps_a_running_ones(arena: Arena) -> None:
    with held_elsewhere(run_folder_code(arena.tmp)):
        live = [p for p in arena.tmp.glob("devtrack-run-*") if p.is_dir()]
        assert len(live) == 1
        result = gc_json(arena)
        assert result["removed"] == [] and live[0].is_dir()
    # the holder is gone, as after kill -9: its folder is a leftover now
    result = gc_json(arena)
    assert [x["kind"] for x in result["removed"]] == ["run_folder"]
    assert list(arena.tmp.glob("devtrack-run-*")) == []


def test_gc_removes_unreferenced_files_never_referenced_or_pinned_ones(
        arena: Arena, mlp_onnx: Path) -> None:
    assert arena.run("register", mlp_onnx, "-m", "kws", "-v", "1").code == 0
    with open_workspace(arena.root) as ws:
        referenced = ws.artifacts.path_for(ws.store.query("SELECT sha256 FROM artifacts")[0]
                                           ["sha256"])
        orphan = ws.artifacts.path_for(FAKE_SHA)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a register killed before its commit")
    with held_elsewhere(pin_code(arena, FAKE_SHA)):  # a register between copy and commit
        assert gc_json(arena)["removed"] == []
    dry = gc_json(arena, "--dry-run")
    assert dry["dry_run"] is True and orphan.exists()
    assert [x["kind"] for x in dry["removed"]] == ["unreferenced_file"]
    result = gc_json(arena)
    assert result["size_bytes"] == len(b"left by a register killed before its commit")
    assert not orphan.exists() and referenced.is_file()
    assert_sound(arena)


def test_gc_leaves_unlocked_leftovers_of_older_devtrack_for_an_hour(arena: Arena) -> None:
    """A folder or partial copy without a lock may belong to an older devtrack still running."""
    old_style = arena.tmp / "devtrack-run-oldstyle"
    old_style.mkdir()
    with open_workspace(arena.root) as ws:
        assert [x.in_use for x in find_leftovers(ws, temp_dir=arena.tmp)] == [True]
    hour_ago = time.time() - 3700
    os.utime(old_style, (hour_ago, hour_ago))
    with open_workspace(arena.root) as ws:
        assert [x.in_use for x in find_leftovers(ws, temp_dir=arena.tmp)] == [False]
    gc_json(arena)
    assert not old_style.exists()


def test_gc_with_nothing_to_do_says_so(arena: Arena) -> None:
    done = arena.run("gc")
    assert done.code == 0 and "Nothing to remove" in done.out


def test_gc_bad_input_is_one_line(arena: Arena, tmp_path: Path) -> None:
    assert_one_line_error(arena.run("gc", "--bogus"), "No such option")
    assert_one_line_error(arena.run("gc", "everything"), "unexpected extra argument")
    env = {**arena.env}
    env.pop("DEVTRACK_WORKSPACE")
    elsewhere = Arena(arena.root, arena.tmp, env)
    assert_one_line_error(elsewhere.run("gc", "-w", tmp_path / "nowhere"),
                          "not a devtrack workspace")
