"""kill -9 at random points of register, bench and deploy: the workspace stays sound, and
`devtrack gc` leaves no leftovers."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.reliability.conftest import Arena, assert_sound, releases, rounds, wait_for


def _orphan_workers(tmp: Path) -> list[int]:
    """Bench workers whose devtrack was killed (their job file is under ``tmp``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"devtrack.bench.worker" in cmdline and str(tmp).encode() in cmdline:
            found.append(int(proc.name))
    return found


def _kill_when(arena: Arena, args: list[str], appeared: Callable[[], bool]) -> bool:
    """Start ``devtrack ARGS`` and SIGKILL it as soon as ``appeared()``; whether it was
    caught in the act (False: it finished first)."""
    proc = arena.popen(*args)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if appeared():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            return True
        time.sleep(0.0005)
    proc.communicate(timeout=60)
    return False


def test_gc_removes_the_partial_copy_of_a_register_killed_while_copying(
        arena: Arena, big_onnx: Path) -> None:
    store = arena.root / ".devtrack" / "artifacts" / "sha256"
    caught = [_kill_when(arena, ["register", str(big_onnx), "-m", "big", "-v", str(n)],
                         lambda: any(store.glob("*/.incoming-*")))
              for n in range(3)]
    assert any(caught), "every register finished before its copy could be seen"
    assert any(store.glob("*/.incoming-*"))
    assert_sound(arena)  # gc removed it


def test_gc_removes_the_temp_folder_of_a_bench_killed_while_measuring(
        arena: Arena, mlp_onnx: Path) -> None:
    assert arena.run("register", mlp_onnx, "-m", "kws", "-v", "1").code == 0
    assert _kill_when(arena, ["bench", "kws@1", "--profile", "tiny"],
                      lambda: any(p.is_dir() for p in arena.tmp.glob("devtrack-run-*")))
    assert [p for p in arena.tmp.glob("devtrack-run-*") if p.is_dir()]
    wait_for(lambda: not _orphan_workers(arena.tmp), timeout_s=60)
    assert_sound(arena)  # gc removed it


def test_kill_during_register_leaves_a_sound_workspace(arena: Arena, big_onnx: Path) -> None:
    rng = random.Random(10)
    for n in range(rounds(2, 20)):
        done = arena.kill_during(["register", str(big_onnx), "-m", "big", "-v", f"{n}"],
                                 max_delay_s=3.0, rng=rng)
        assert "Traceback" not in done.err
        assert_sound(arena)
    # whatever the kills left, registering again works and lands
    assert arena.run("register", big_onnx, "-m", "big", "-v", "again").code == 0
    assert "big@again" in releases(arena)
    assert_sound(arena)


def test_kill_during_bench_leaves_a_sound_workspace(arena: Arena, mlp_onnx: Path) -> None:
    assert arena.run("register", mlp_onnx, "-m", "kws", "-v", "1").code == 0
    rng = random.Random(20)
    for _ in range(rounds(1, 12)):
        done = arena.kill_during(["bench", "kws@1", "--profile", "tiny"], max_delay_s=5.0,
                                 rng=rng)
        assert "Traceback" not in done.err
        assert_sound(arena)
        wait_for(lambda: not _orphan_workers(arena.tmp), timeout_s=60)
        assert_sound(arena)  # and whatever the orphaned worker did before it ended


def test_kill_during_deploy_leaves_a_sound_workspace(arena: Arena, mlp_onnx: Path,
                                                     mlp_onnx_b: Path) -> None:
    for version, path in (("1", mlp_onnx), ("2", mlp_onnx_b)):
        assert arena.run("register", path, "-m", "app", "-v", version, "--notes", "n").code == 0
    rng = random.Random(30)
    for n in range(rounds(2, 20)):
        done = arena.kill_during(["deploy", f"app@{1 + n % 2}", "-p", "ci-host", "--reason",
                                  f"round {n}", "--force"], max_delay_s=1.5, rng=rng)
        assert "Traceback" not in done.err
        assert_sound(arena)
