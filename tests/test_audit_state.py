"""``audit verify`` beyond the chain: tables edited by hand disagree with the sealed events."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from devtrack.auditing import verify_audit
from devtrack.cli import main
from devtrack.core.audit_state import cross_check
from devtrack.lifecycle import set_notes
from devtrack.workspace import open_workspace
from tests.conftest import WorkspaceFactory, raw_sql
from tests.test_lifecycle import PROFILE, TINY_PROFILE, build_scenario, cli

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
             mlp_onnx_b: Path, module_workspaces: WorkspaceFactory) -> Path:
    return build_scenario(tmp_path_factory.mktemp("audit-state"), mlp_onnx, mlp_onnx_b,
                          module_workspaces)


@pytest.fixture(scope="module")
def evaluated_template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
                       mlp_onnx_b: Path, module_workspaces: WorkspaceFactory) -> Path:
    """Everything through the real CLI: a dataset, bench --eval, promote, check, deploy,
    notes, a forced deploy and a rollback."""
    import onnxruntime as ort

    base = tmp_path_factory.mktemp("audit-eval")
    x = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    session = ort.InferenceSession(str(mlp_onnx), providers=["CPUExecutionProvider"])
    labels = np.array([session.run(None, {"input": row[None]})[0].argmax() for row in x])
    np.savez(base / "digits.npz", input=x, labels=labels)  # kws@1.0 scores 1.0
    root = base / "ws"
    module_workspaces.init(root)
    steps: list[tuple[object, ...]] = [
        ("init", root),  # again (nothing changes); the profile is written after it
        ("dataset", "add", base / "digits.npz", "--name", "digits"),
        ("register", mlp_onnx, "-m", "kws", "-v", "1.0", "--notes", "first build"),
        ("register", mlp_onnx_b, "-m", "kws", "-v", "1.1", "--parent", "1.0", "--tag",
         "team=audio", "--notes", "retrained"),
        ("bench", "kws@1.0", "kws@1.1", "-p", PROFILE, "--eval", "digits"),
        ("promote", "kws@1.0", "--to", "approved", "--reason", "review"),
        ("check", "kws@1.0", "--profile", PROFILE, "--no-rerun"),
        ("deploy", "kws@1.0", "-p", PROFILE, "--reason", "first build"),
        ("notes", "kws@1.1", "--set", "retrained on May data", "--reason", "review"),
        ("deploy", "kws@1.1", "-p", PROFILE, "--reason", "hotfix", "--force"),  # unchecked
        ("rollback", "kws", "-p", PROFILE, "--reason", "crash reports"),
    ]
    after = [("dataset", "default", "kws", "digits")]
    for step in steps:
        workspace = () if step[0] == "init" else ("-w", root)
        assert cli(*step, *workspace) == 0, step
        if step[0] == "init":
            (root / "device_profiles" / f"{PROFILE}.toml").write_text(TINY_PROFILE)
    # Side-by-side measurements: one by compare (its own event), one by a check (its report;
    # the check measures side by side on a profile with a latency regression limit)
    assert cli("compare", "kws@1.0", "kws@1.1", "-p", PROFILE, "--rerun", "--repeats", "4",
               "-w", root) == 0
    (root / "device_profiles" / "gated.toml").write_text(
        TINY_PROFILE.replace(f'"{PROFILE}"', '"gated"')
        + "max_latency_regression_pct = 50.0\n", encoding="utf-8")
    assert cli("check", "kws@1.1", "--baseline", "kws@1.0", "-p", "gated", "--bench",
               "--repeats", "4", "-w", root) in (0, 1)
    for step in after:
        assert cli(*step, "-w", root) == 0, step
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path, workspaces: WorkspaceFactory) -> Path:
    return workspaces.copy(template, tmp_path / "ws")


@pytest.fixture
def evaluated(evaluated_template: Path, tmp_path: Path, workspaces: WorkspaceFactory) -> Path:
    return workspaces.copy(evaluated_template, tmp_path / "ws")


def edit(root: Path, *statements: str) -> None:
    """What someone with the database's own client (sqlite3, psql) could do."""
    raw_sql(root, *statements)


def problems(root: Path) -> list[str]:
    with open_workspace(root) as ws:
        result = verify_audit(ws)
    assert result.problem is None, result.problem  # the chain itself is intact
    return [p.message for p in result.state]


DIFFER = re.compile(r": ([\w ,]+) (differs|differ) from what event \d+ recorded")


def assert_named(root: Path, statements: tuple[str, ...], expected: str) -> None:
    edit(root, "PRAGMA foreign_keys = OFF", *statements)
    found = problems(root)
    assert any(expected in message for message in found), found
    for message in found:  # one line naming the event; "differs" for one field
        assert "\n" not in message, message
        assert "event" in message, message
        grammar = DIFFER.search(message)
        if grammar:
            labels = grammar[1].split(", ")
            plural = len(labels) > 1 or labels[0] in ("samples", "stored fields")
            assert grammar[2] == ("differ" if plural else "differs"), message


RUN_OF_1_1 = ("(SELECT u.id FROM runs u JOIN releases r ON r.id = u.release_id "
              "WHERE r.version = '1.1')")
EDITS: dict[str, tuple[tuple[str, ...], str]] = {
    "status": (("UPDATE releases SET status = 'approved' WHERE version = '1.4'",),
               "release kws@1.4 is 'approved', but the audit trail says 'rejected'"),
    "artifact": (("UPDATE releases SET artifact_sha256 = (SELECT artifact_sha256 FROM "
                  "releases WHERE version = '1.2') WHERE version = '1.1'",),
                 "release kws@1.1 points at artifact"),
    "registered notes": (("UPDATE releases SET notes = 'looks great' WHERE version = '1.1'",),
                         "release kws@1.1: its notes differ from the text event 2 "
                         "registered"),
    "release tags": (("UPDATE releases SET tags = '{\"approved-by\": \"qa\"}' WHERE "
                      "version = '1.1'",),
                     "release kws@1.1: stored fields differ from what event 2 recorded"),
    "release parent": (("UPDATE releases SET parent_id = (SELECT id FROM releases WHERE "
                        "version = '1.0') WHERE version = '1.1'",),
                       "release kws@1.1: stored fields differ from what event 2 recorded"),
    "run figure": ((f"UPDATE runs SET p50_ms = p50_ms / 2 WHERE id = {RUN_OF_1_1}",),
                   "kws@1.1: p50_ms, stored fields differ from what event"),
    "run p90": ((f"UPDATE runs SET p90_ms = p90_ms / 2 WHERE id = {RUN_OF_1_1}",),
                "kws@1.1: stored fields differ from what event"),
    "run memory": ((f"UPDATE runs SET load_delta_mb = 1 WHERE id = {RUN_OF_1_1}",),
                   "kws@1.1: stored fields differ from what event"),
    "run identity": ((f"UPDATE runs SET conditions_hash = 'forged' WHERE id = {RUN_OF_1_1}",),
                     "kws@1.1: run identity (conditions_hash) differs from what event"),
    "run stop reason": ((f"UPDATE runs SET stop_reason = 'max_time' WHERE id = {RUN_OF_1_1}",),
                        "kws@1.1: stored fields differ from what event"),
    "run status": ((f"UPDATE runs SET status = 'failed', error = 'crashed' WHERE id = "
                    f"{RUN_OF_1_1}",), "kws@1.1: status, stored fields differ from what event"),
    "run samples": ((f"UPDATE runs SET samples = X'0000803f' WHERE id = {RUN_OF_1_1}",),
                    "samples differ from what event"),
    "run moved": ((f"UPDATE runs SET release_id = (SELECT id FROM releases WHERE version = "
                   f"'1.0') WHERE id = {RUN_OF_1_1}",), "release differs from what event"),
    "run added": (("INSERT INTO runs (release_id, profile, profile_hash, profile_snapshot, "
                   "status, started_at, finished_at, actor, host, p50_ms) SELECT release_id, "
                   "profile, profile_hash, profile_snapshot, status, started_at, finished_at, "
                   "actor, host, 0.001 FROM runs LIMIT 1",),
                  "has no bench event: it was added outside devtrack"),
    "run removed": ((f"DELETE FROM runs WHERE id = {RUN_OF_1_1}",), "is missing"),
    "check": (("UPDATE checks SET passed = 1 - passed",), "now reads"),
    "check report": (("UPDATE checks SET report = replace(report, 'pass', 'PASS')",),
                     "check 1 of kws@1.5 on tiny: report differs from what event"),
    "check moved": (("UPDATE checks SET release_id = (SELECT id FROM releases WHERE "
                     "version = '1.1')",),
                    "check 1 of kws@1.5 on tiny: release differs from what event"),
    "deployment": (("UPDATE deployments SET release_id = (SELECT id FROM releases WHERE "
                    "version = '1.0')",), "but event"),
    "deployment reason": (("UPDATE deployments SET reason = 'approved by the boss'",),
                          "deployment 1 of kws@1.5 on tiny: reason differs from what event"),
    "deployment forced": (("UPDATE deployments SET forced = 1 - forced",),
                          "deployment 1 of kws@1.5 on tiny: forced differs from what event"),
    "deployment check": (("UPDATE deployments SET check_id = NULL",),
                         "deployment 1 of kws@1.5 on tiny: check differs from what event"),
    "artifact size": (("UPDATE artifacts SET size_bytes = 1",),
                      "release kws@1.0: artifact size differs from what event 1 recorded"),
    "artifact format": (("UPDATE artifacts SET format = 'tflite'",),
                        "release kws@1.0: artifact format differs from what event 1 recorded"),
    "model task": (("UPDATE models SET task = 'regression'",),
                   "model line kws: task differs from what event 1 recorded"),
    "model created_at": (("UPDATE models SET created_at = '2020-01-01T00:00:00Z'",),
                         "model line kws: created_at differs from what event 1 recorded"),
    "artifact created_at": (("UPDATE artifacts SET created_at = '2020-01-01T00:00:00Z' WHERE "
                             "sha256 = (SELECT artifact_sha256 FROM releases WHERE version = "
                             "'1.2')",),
                            "release kws@1.2: artifact created_at differs from what event 3 "
                            "recorded"),
    "check created_at": (("UPDATE checks SET created_at = '2020-01-01T00:00:00Z'",),
                         "check 1 of kws@1.5 on tiny: created_at differs from what event"),
    "model added": (("INSERT INTO models (name, task, created_at) VALUES ('ghost', 'other', "
                     "'2030-01-01T00:00:00Z')",),
                    "model line ghost has no register event: it was added outside devtrack"),
    "default dataset set by hand": (("UPDATE models SET default_dataset = 'digits'",),
                                    "model line kws: its default dataset is digits, but no "
                                    "dataset_default event set one"),
    "dataset added": (("INSERT INTO datasets (name, sha256, task, samples, arrays, has_labels, "
                       "created_at, created_by) VALUES ('easy', '', 'classification', 1, '{}', "
                       "1, '', '')",),
                      "dataset easy has no dataset_add event: it was added outside devtrack"),
    "deployment actor": (("UPDATE deployments SET deployed_by = 'mallory'",),
                         "deployment 1 of kws@1.5 on tiny: deployed_by differs from what "
                         "event"),
    "deployment time": (("UPDATE deployments SET deployed_at = '2020-01-01T00:00:00Z'",),
                        "deployment 1 of kws@1.5 on tiny: deployed_at differs from what event"),
    "check actor": (("UPDATE checks SET actor = 'mallory'",),
                    "check 1 of kws@1.5 on tiny: actor differs from what event"),
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
EVAL_RUN_1_0 = ("(SELECT u.id FROM runs u JOIN releases r ON r.id = u.release_id "
                "WHERE r.version = '1.0')")
EVAL_EDITS: dict[str, tuple[tuple[str, ...], str]] = {
    "accuracy": ((f"UPDATE evaluations SET accuracy = accuracy - 0.1 WHERE run_id = "
                  f"{EVAL_RUN_1_0}",), "of run 1 (kws@1.0): accuracy differs from what event"),
    "evaluation dataset": (("INSERT INTO datasets (name, sha256, task, samples, arrays, "
                            "has_labels, created_at, created_by) VALUES ('easy', '', "
                            "'classification', 1, '{}', 1, '', '')",
                            "UPDATE evaluations SET dataset_id = (SELECT id FROM datasets "
                            "WHERE name = 'easy')"),
                           "of run 1 (kws@1.0): dataset differs from what event"),
    "evaluation removed": ((f"DELETE FROM evaluations WHERE run_id = {EVAL_RUN_1_0}",),
                           "evaluation 1 of run 1 (kws@1.0) on digits (event 4) is missing"),
    "evaluation doubled": (("INSERT INTO evaluations (run_id, dataset_id, task, metrics, "
                            "accuracy, created_at) SELECT run_id, dataset_id, task, metrics, "
                            "accuracy, created_at FROM evaluations WHERE run_id = "
                            f"{EVAL_RUN_1_0}",),
                           "evaluation 3 of run 1 (kws@1.0) is not the one event 4 recorded: "
                           "it was added outside devtrack"),
    "evaluation metrics": ((f"UPDATE evaluations SET metrics = '{{}}' WHERE run_id = "
                            f"{EVAL_RUN_1_0}",),
                           "evaluation 1 of run 1 (kws@1.0): stored fields differ from what "
                           "event 4 recorded"),
    "evaluation fidelity": (("UPDATE evaluations SET fidelity = NULL WHERE fidelity IS NOT "
                             "NULL",), "(kws@1.1): stored fields differ from what event 5"),
    "evaluation predictions": ((f"UPDATE evaluations SET predictions = X'00000000' WHERE "
                                f"run_id = {EVAL_RUN_1_0}",),
                               "evaluation 1 of run 1 (kws@1.0): stored fields differ"),
    "dataset arrays": (("UPDATE datasets SET has_labels = 0",),
                       "dataset digits: stored fields differ from what event 1 recorded"),
    "default dataset cleared": (("UPDATE models SET default_dataset = NULL",),
                                "model line kws: its default dataset is none, but the audit "
                                "trail says digits (event 15)"),
    "check baseline": (("UPDATE checks SET baseline_release_id = (SELECT id FROM releases "
                        "WHERE version = '1.1') WHERE baseline_release_id IS NOT NULL",),
                       "check 2 of kws@1.1 on gated: baseline differs from what event 14"),
    "comparison baseline": (("UPDATE comparisons SET baseline_release_id = candidate_release_id "
                             "WHERE id = 1",),
                            "comparison 1 of kws@1.1 on tiny: baseline differs from what "
                            "event 12"),
    "dataset sha256": (("UPDATE datasets SET sha256 = '" + "0" * 64 + "'",),
                       "dataset digits: sha256 differs from what event 1 recorded"),
    "dataset samples": (("UPDATE datasets SET samples = 4000, task = 'regression'",),
                        "dataset digits: task, samples differ from what event 1 recorded"),
    "dataset removed": (("DELETE FROM datasets",),
                        "dataset digits (added in event 1) is missing"),
    "notes after a notes event": (("UPDATE releases SET notes = 'retrained' WHERE version = "
                                   "'1.1'",),
                                  "release kws@1.1: its notes differ from the text event 9 "
                                  "set"),
    "forced deploy unforced": (("UPDATE deployments SET forced = 0 WHERE reason = 'hotfix'",),
                               "deployment 2 of kws@1.1 on tiny: forced differs from what "
                               "event 10 recorded"),
    "rollback forced": (("UPDATE deployments SET forced = 1 WHERE kind = 'rollback'",),
                        "deployment 3 of kws@1.0 on tiny: forced differs from what event 11 "
                        "recorded"),
    "replaced deployment's end": (("UPDATE deployments SET ended_at = "
                                   "'2020-01-01T00:00:00Z' WHERE id = 1",),
                                  "deployment 1 of kws@1.0 on tiny: its end differs from when "
                                  "deployment 2 replaced it (event 10)"),
    "rollback reason and check": (("UPDATE deployments SET reason = 'planned', check_id = "
                                   "NULL WHERE kind = 'rollback'",),
                                  "deployment 3 of kws@1.0 on tiny: reason, check differ "
                                  "from what event 11 recorded"),
}


def test_an_untouched_workspace_agrees_with_its_trail(root: Path) -> None:
    assert problems(root) == []


def test_a_workspace_built_through_the_cli_agrees_with_its_trail(evaluated: Path) -> None:
    assert problems(evaluated) == []
    with open_workspace(evaluated) as ws:
        kinds = [e["kind"] for e in ws.store.events()]
        forced = ws.store.one("SELECT forced FROM deployments WHERE reason = 'hotfix'")
    assert kinds == ["dataset_add", "register", "register", "bench", "bench", "promote",
                     "check", "deploy", "notes", "deploy", "rollback",  # ids EVAL_EDITS uses
                     "compare", "bench", "check", "dataset_default"]
    with open_workspace(evaluated) as ws:
        assert len(ws.store.query("SELECT id FROM comparisons")) == 2
    assert forced is not None and forced["forced"] == 1


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_hand_edit_is_named(root: Path, name: str) -> None:
    assert_named(root, *EDITS[name])


@pytest.mark.parametrize("name", sorted(EVAL_EDITS))
def test_a_hand_edit_of_an_evaluated_workspace_is_named(evaluated: Path, name: str) -> None:
    assert_named(evaluated, *EVAL_EDITS[name])


def test_notes_are_checked_against_the_last_notes_event(root: Path) -> None:
    with open_workspace(root) as ws:
        set_notes(ws, "kws@1.1", "calibrated on May data", reason="review")
    assert problems(root) == []
    edit(root, "UPDATE releases SET notes = 'looks great' WHERE version = '1.1'")
    assert problems(root) == ["release kws@1.1: its notes differ from the text event "
                              f"{_last_event_id(root)} set"]


def test_an_evaluation_added_to_a_run_benched_without_one_is_named(evaluated: Path) -> None:
    # kws@1.0's compare-free bench under "gated" measured no accuracy; a row giving it one
    # would flip min_accuracy from "not measured" to pass.
    edit(evaluated, "INSERT INTO evaluations (run_id, dataset_id, task, metrics, accuracy, "
         "created_at) SELECT (SELECT MAX(id) FROM runs), dataset_id, task, metrics, 0.99, "
         "created_at FROM evaluations LIMIT 1")
    found = problems(evaluated)
    assert len(found) == 1 and "it was added outside devtrack" in found[0], found


def _last_event_id(root: Path) -> int:
    with open_workspace(root) as ws:
        return int(ws.store.events()[-1]["id"])


def test_what_older_events_did_not_seal_is_not_second_guessed() -> None:
    """Events of earlier versions carry none of the digests, the reason-free deploys or
    the evaluation keys: rows that differ only in what those events left out pass."""
    ref = {"model": "kws", "version": "1.0"}
    events = [
        {"id": 1, "kind": "register", **ref, "payload": json.dumps({"sha256": "a"})},
        {"id": 2, "kind": "bench", **ref, "payload": json.dumps(
            {"run": 1, "profile": "tiny", "status": "ok", "p50_ms": 1.0})},
        {"id": 3, "kind": "check", **ref, "payload": json.dumps({"check": 1, "passed": True})},
        {"id": 4, "kind": "deploy", **ref, "reason": None, "payload": json.dumps(
            {"profile": "tiny", "deployment": 1})},
        {"id": 5, "kind": "dataset_add", "model": None, "version": None,
         "payload": json.dumps({"dataset": "digits"})},
    ]
    release = {"id": 1, **ref, "artifact_sha256": "a", "status": "candidate",
               "notes": "edited", "parent": "0.9", "tags": "{\"x\": 1}"}
    run = {"id": 1, **ref, "status": "ok", "profile": "tiny", "p50_ms": 1.0,
           "peak_rss_mb": 99.0, "samples_sha256": "s", "fields_sha256": "f"}
    check = {"id": 1, **ref, "profile": "tiny", "profile_hash": "h", "passed": 1,
             "report": "{}"}
    deployment = {"id": 1, **ref, "profile": "tiny", "kind": "deploy", "reason": "whatever",
                  "forced": 1, "check_id": None, "replaced": None, "ended_at": None}
    evaluation = {"id": 1, "run_id": 1, "dataset": "digits", "accuracy": 0.1,
                  "nonfinite": 0}
    assert cross_check(events, releases=[release], runs=[run], evaluations=[evaluation],
                       checks=[check], deployments=[deployment],
                       datasets=[{"id": 1, "name": "digits", "sha256": "x"}],
                       models=[{"id": 1, "name": "kws", "task": "regression",
                                "default_dataset": None}]) == []


def test_the_cli_names_each_problem_and_exits_1(root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run: Callable[..., int] = lambda *a: main([str(x) for x in a])  # noqa: E731
    assert run("audit", "verify", "-w", root) == 0
    assert "every table agrees with it" in capsys.readouterr().out
    edit(root, "UPDATE releases SET status = 'approved' WHERE version = '1.4'",
         "UPDATE checks SET passed = 1 - passed")
    assert run("audit", "verify", "-w", root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err), err
    assert run("audit", "verify", "--json", "-w", root) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problem"] is None
    assert {p["table"] for p in report["state_problems"]} == {"releases", "checks"}


@pytest.mark.parametrize(("statements", "expected"), [
    (("UPDATE comparisons SET verdict = 'faster', ratio = 0.5 WHERE id = 1",),
     "comparison 1 of kws@1.1 on tiny: verdict, ratio differ from what event 12 recorded"),
    (("UPDATE comparisons SET status = 'failed' WHERE id = 1",), "status differs"),
    (("DELETE FROM comparisons WHERE id = 1",), "comparison 1 of kws@1.1 (event 12) is missing"),
    (("INSERT INTO comparisons (baseline_release_id, candidate_release_id, profile, "
      "profile_hash, status, ratio, verdict, created_at, actor) SELECT baseline_release_id, "
      "candidate_release_id, profile, profile_hash, status, 0.5, 'faster', created_at, actor "
      "FROM comparisons WHERE id = 1",), "comparison 3 of kws@1.1 has no compare or explain event"),
])
def test_stored_side_by_side_measurements_are_checked(evaluated: Path,
                                                     statements: tuple[str, ...],
                                                     expected: str) -> None:
    edit(evaluated, "PRAGMA foreign_keys = OFF", *statements)
    found = problems(evaluated)
    assert any(expected in message for message in found), found
    assert not any("comparison 2 " in message for message in found), found  # the check's
    # ... is accounted for by the check's report, not by an event of its own


def test_a_workspace_built_through_the_cli_verifies_clean_bytes_included(
        evaluated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "-w", str(evaluated)]) == 0
    captured = capsys.readouterr()
    assert "every table agrees with it" in captured.out
    assert "Files: 3 stored files rehashed" in captured.out and "all intact" in captured.out
    assert captured.err == ""


@pytest.mark.parametrize("table", ["deployments", "evaluations", "models", "events"])
def test_a_dropped_table_is_named_with_exit_1(root: Path, table: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    edit(root, "PRAGMA foreign_keys = OFF", f"DROP TABLE {table}")
    assert main(["audit", "verify", "-w", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("error: ") for line in err), err
    assert f"table {table} is missing from the database" in err[0], err
    assert main(["audit", "verify", "--json", "-w", str(root)]) == 1
    report = json.loads(capsys.readouterr().out)
    named = [report["problem"]] if report["problem"] else report["state_problems"]
    assert f"table {table} is missing" in named[0]["message"]


@pytest.mark.parametrize(("statement", "expected"), [
    ("UPDATE comparisons SET ci_high = ci_high * 2 WHERE id = 1",
     "comparison 1 of kws@1.1 on tiny: stored fields differ from what event 12 recorded"),
    ("UPDATE comparisons SET ratios = X'0000803f' WHERE id = 2",  # the check's, event 14
     "comparison 2 of kws@1.1 on gated: stored fields differ from what event 14 recorded"),
    ("UPDATE comparisons SET details = '{}' WHERE id = 2",
     "comparison 2 of kws@1.1 on gated: stored fields differ"),
    ("DELETE FROM comparisons WHERE id = 2",
     "comparison 2 of kws@1.1 (check event 14) is missing"),
])
def test_every_field_of_a_side_by_side_measurement_is_sealed(evaluated: Path, statement: str,
                                                             expected: str) -> None:
    edit(evaluated, "PRAGMA foreign_keys = OFF", statement)
    found = problems(evaluated)
    assert any(expected in message for message in found), found


def test_a_dropped_column_is_named_with_exit_1(root: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    edit(root, "ALTER TABLE checks DROP COLUMN report")
    assert main(["audit", "verify", "-w", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: table checks cannot be read as devtrack wrote it"), err
