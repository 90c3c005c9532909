"""Real devtrack processes racing on one workspace: nothing is lost, losers get one line."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from devtrack.workspace import open_workspace
from tests.reliability.conftest import (
    Arena,
    assert_one_line_error,
    assert_sound,
    events,
    releases,
    rounds,
)

RACERS = rounds(4, 8)


@pytest.fixture(scope="module")
def seeded_models(model_dir: Path) -> list[Path]:
    """Distinct tiny models (different bytes, one input shape)."""
    from devtrack.builders.onnx_models import build_mlp

    paths = []
    for seed in range(RACERS):
        path = model_dir / f"racer-{seed}.onnx"
        if not path.exists():
            build_mlp(path, in_features=16, hidden=(8,), classes=4, seed=100 + seed)
        paths.append(path)
    return paths


def test_registers_opening_new_model_lines_at_once_all_land(arena: Arena,
                                                            seeded_models: list[Path]) -> None:
    for n in range(rounds(1, 10)):
        # half open one new line together, half open a line each; some share a file
        commands = [["register", str(seeded_models[i % 3]), "-m", f"line{n}",
                     "-v", f"1.{i}", "--task", "classification"] for i in range(RACERS // 2)]
        commands += [["register", str(seeded_models[i]), "-m", f"solo{n}-{i}", "-v", "1.0"]
                     for i in range(RACERS // 2, RACERS)]
        for done in arena.race(commands):
            assert done.code == 0, done.err
        expected = {f"line{n}@1.{i}" for i in range(RACERS // 2)}
        expected |= {f"solo{n}-{i}@1.0" for i in range(RACERS // 2, RACERS)}
        assert expected <= releases(arena)
    assert_sound(arena)


@pytest.mark.parametrize("same_file", [True, False], ids=["same-file", "different-files"])
def test_registers_of_one_version_at_once_one_wins_the_rest_exit_2(
        arena: Arena, seeded_models: list[Path], big_onnx: Path, same_file: bool) -> None:
    for n in range(rounds(1, 5)):
        files = [big_onnx] * RACERS if same_file else seeded_models
        done = arena.race([["register", str(f), "-m", "kws", "-v", f"{n}.0"] for f in files])
        winners = [d for d in done if d.code == 0]
        assert len(winners) == 1, [(d.code, d.err) for d in done]
        for loser in (d for d in done if d.code != 0):
            assert_one_line_error(loser, f"kws@{n}.0 is already registered")
        # the winner's file is in the store, whole, whatever the losers did
        with open_workspace(arena.root) as ws:
            sha = ws.store.one("SELECT r.artifact_sha256 AS h FROM releases r "
                               "WHERE version = ?", (f"{n}.0",))
            assert sha is not None
            ws.artifacts.verify(sha["h"])
    assert_sound(arena)


def test_writers_on_every_table_at_once_lose_nothing(arena: Arena, mlp_onnx: Path,
                                                     seeded_models: list[Path],
                                                     tmp_path: Path) -> None:
    for version in ("1", "2"):
        assert arena.run("register", mlp_onnx, "-m", "app", "-v", version,
                         "--notes", f"build {version}").code == 0
    data = []
    for i in range(2):
        path = tmp_path / f"data{i}.npz"
        rng = np.random.default_rng(i)
        np.savez(path, input=rng.random((8, 16), dtype=np.float32),
                 labels=rng.integers(0, 4, 8))
        data.append(path)
    for n in range(rounds(1, 5)):
        commands = [
            ["register", str(seeded_models[0]), "-m", "app", "-v", f"3.{n}"],
            ["register", str(seeded_models[1]), "-m", f"fresh{n}", "-v", "1"],
            ["notes", "app@1", "--set", f"round {n}: first writer"],
            ["notes", "app@1", "--set", f"round {n}: second writer"],
            ["notes", "app@1", "--set", f"round {n}: third writer"],
            ["deploy", f"app@{1 + n % 2}", "-p", "ci-host", "--reason", "r", "--force"],
            ["deploy", f"app@{2 - n % 2}", "-p", "ci-host", "--reason", "r", "--force"],
            ["deploy", "app@1", "-p", "tiny", "--reason", "r", "--force"],
            ["dataset", "add", str(data[0]), "--name", f"set{n}"],
            ["dataset", "add", str(data[1]), "--name", f"set{n}"],
            ["dataset", "add", str(data[1]), "--name", f"other{n}"],
        ]
        if n == 0:
            commands += [["promote", "app@2", "--to", "approved", "--reason", "r"]] * 2
        done = {i: d for i, d in enumerate(arena.race(commands))}
        for i in (0, 1, 2, 3, 4, 5, 6, 10):
            assert done[i].code == 0, (done[i].args, done[i].err)
        assert done[7].code in (0, 2)  # app@1 may already be live on tiny
        datasets = [done[8], done[9]]
        assert sorted(d.code for d in datasets) == [0, 2]
        assert_one_line_error(next(d for d in datasets if d.code), f"'set{n}' already exists")
        if n == 0:
            promotes = [done[11], done[12]]
            assert sorted(d.code for d in promotes) == [0, 2]
            assert_one_line_error(next(d for d in promotes if d.code), "already approved")
        assert {f"app@3.{n}", f"fresh{n}@1"} <= releases(arena)
    # each notes event saw the text the previous one wrote: no edit was lost
    notes = [e["payload"] for e in events(arena, "notes")]
    assert len(notes) == 3 * rounds(1, 5)
    assert notes[0]["old"] == "build 1"
    for before, after in itertools.pairwise(notes):
        assert after["old"] == before["new"]
    with open_workspace(arena.root) as ws:
        live = ws.store.query("SELECT profile, COUNT(*) AS n FROM deployments "
                              "WHERE ended_at IS NULL GROUP BY profile")
    assert {r["profile"]: r["n"] for r in live} == {"ci-host": 1, "tiny": 1}
    assert_sound(arena)
