"""``audit verify`` beyond the chain: tables edited by hand disagree with the sealed events."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from devtrack.auditing import verify_audit
from devtrack.cli import main
from devtrack.lifecycle import set_notes
from devtrack.workspace import DOT_DIR, open_workspace
from tests.test_lifecycle import build_scenario


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
             mlp_onnx_b: Path) -> Path:
    return build_scenario(tmp_path_factory.mktemp("audit-state"), mlp_onnx, mlp_onnx_b)


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(template, copy)
    return copy


def edit(root: Path, *statements: str) -> None:
    """What someone with sqlite3 and the database file could do."""
    conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def problems(root: Path) -> list[str]:
    with open_workspace(root) as ws:
        result = verify_audit(ws)
    assert result.problem is None, result.problem  # the chain itself is intact
    return [p.message for p in result.state]


RUN_OF_1_1 = ("(SELECT u.id FROM runs u JOIN releases r ON r.id = u.release_id "
              "WHERE r.version = '1.1')")
EDITS: dict[str, tuple[tuple[str, ...], str]] = {
    "status": (("UPDATE releases SET status = 'approved' WHERE version = '1.4'",),
               "release kws@1.4 is 'approved', but the audit trail says 'rejected'"),
    "artifact": (("UPDATE releases SET artifact_sha256 = (SELECT artifact_sha256 FROM "
                  "releases WHERE version = '1.2') WHERE version = '1.1'",),
                 "release kws@1.1 points at artifact"),
    "run figure": ((f"UPDATE runs SET p50_ms = p50_ms / 2 WHERE id = {RUN_OF_1_1}",),
                   "p50_ms differ from what event"),
    "run samples": ((f"UPDATE runs SET samples = X'0000803f' WHERE id = {RUN_OF_1_1}",),
                    "samples differ from what event"),
    "run moved": ((f"UPDATE runs SET release_id = (SELECT id FROM releases WHERE version = "
                   f"'1.0') WHERE id = {RUN_OF_1_1}",), "release differ from what event"),
    "run added": (("INSERT INTO runs (release_id, profile, profile_hash, profile_snapshot, "
                   "status, started_at, finished_at, actor, host, p50_ms) SELECT release_id, "
                   "profile, profile_hash, profile_snapshot, status, started_at, finished_at, "
                   "actor, host, 0.001 FROM runs LIMIT 1",),
                  "has no bench event: it was added outside devtrack"),
    "run removed": ((f"DELETE FROM runs WHERE id = {RUN_OF_1_1}",), "is missing"),
    "check": (("UPDATE checks SET passed = 1 - passed",), "now reads"),
    "deployment": (("UPDATE deployments SET release_id = (SELECT id FROM releases WHERE "
                    "version = '1.0')",), "but event"),
    "undeployed": (("UPDATE deployments SET ended_at = '2030-01-01T00:00:00Z'",),
                   "kws on tiny: nothing is live, but the last deploy"),
    "deployment removed": (("DELETE FROM deployments",),
                           "kws on tiny: nothing is live, but the last deploy"),
    "deployment added": (("INSERT INTO deployments (model_id, release_id, profile, kind, "
                          "deployed_at, deployed_by, reason) SELECT model_id, id, 'tiny', "
                          "'deploy', '2030-01-01T00:00:00Z', 'mallory', 'quietly' FROM "
                          "releases WHERE version = '1.2'",),
                         "has no deploy or rollback event"),
}


def test_an_untouched_workspace_agrees_with_its_trail(root: Path) -> None:
    assert problems(root) == []


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_hand_edit_is_named(root: Path, name: str) -> None:
    statements, expected = EDITS[name]
    edit(root, "PRAGMA foreign_keys = OFF", *statements)
    found = problems(root)
    assert any(expected in message for message in found), found


def test_notes_are_checked_against_the_last_notes_event(root: Path) -> None:
    with open_workspace(root) as ws:
        set_notes(ws, "kws@1.1", "calibrated on May data", reason="review")
    assert problems(root) == []
    edit(root, "UPDATE releases SET notes = 'looks great' WHERE version = '1.1'")
    assert problems(root) == ["release kws@1.1: its notes differ from the text event "
                              f"{_last_event_id(root)} set"]


def _last_event_id(root: Path) -> int:
    with open_workspace(root) as ws:
        return int(ws.store.events()[-1]["id"])


def test_the_cli_names_each_problem_and_exits_1(root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run: Callable[..., int] = lambda *a: main([str(x) for x in a])  # noqa: E731
    assert run("audit", "verify", "-w", root) == 0
    assert "agree with it" in capsys.readouterr().out
    edit(root, "UPDATE releases SET status = 'approved' WHERE version = '1.4'",
         "UPDATE checks SET passed = 1 - passed")
    assert run("audit", "verify", "-w", root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err), err
    assert run("audit", "verify", "--json", "-w", root) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problem"] is None
    assert {p["table"] for p in report["state_problems"]} == {"releases", "checks"}
