"""import killed at random points, and imports racing: the workspace stays sound (as before or
with the whole bundle) and `devtrack gc` leaves no leftovers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reliability.conftest import Arena, assert_sound, events, releases, rounds
from tests.reliability.test_kills import _kill_when


@pytest.fixture
def big_bundle(tmp_path: Path, big_onnx: Path, mlp_onnx: Path) -> Path:
    from devtrack.cli import main

    lab = tmp_path / "lab"
    bundle = tmp_path / "big.zip"
    for step in (["init", lab],
                 ["register", mlp_onnx, "-m", "big", "-v", "1", "-w", lab],
                 ["register", big_onnx, "-m", "big", "-v", "2", "--parent", "1", "-w", lab],
                 ["export", "big", "-o", bundle, "-w", lab]):
        assert main([str(a) for a in step]) == 0, step
    return bundle


def _sound_and_all_or_nothing(arena: Arena) -> None:
    assert_sound(arena)
    assert releases(arena) in (set(), {"big@1", "big@2"})


def test_an_import_killed_while_storing_files_leaves_nothing_gc_cannot_remove(
        arena: Arena, big_bundle: Path) -> None:
    store = arena.root / ".devtrack" / "artifacts" / "sha256"
    caught = [_kill_when(arena, ["import", str(big_bundle)],
                         lambda: any(p.is_file() for p in store.glob("*/*")))
              for _ in range(3)]
    _sound_and_all_or_nothing(arena)
    assert any(caught) or releases(arena) == {"big@1", "big@2"}


def test_an_import_killed_at_random_moments_is_all_or_nothing(
        arena: Arena, big_bundle: Path) -> None:
    rng = random.Random(13)
    for _ in range(rounds(3, 12)):
        arena.kill_during(["import", str(big_bundle)], 1.5, rng)
        _sound_and_all_or_nothing(arena)
    assert arena.run("import", big_bundle).code == 0
    _sound_and_all_or_nothing(arena)
    assert releases(arena) == {"big@1", "big@2"}
    assert len(events(arena, "import")) == 1


def test_imports_racing_add_the_bundle_once(arena: Arena, big_bundle: Path) -> None:
    done = arena.race([["import", str(big_bundle)] for _ in range(3)])
    assert [d.code for d in done] == [0, 0, 0], [d.err for d in done]
    assert len(events(arena, "import")) == 1
    assert releases(arena) == {"big@1", "big@2"}
    assert_sound(arena)
