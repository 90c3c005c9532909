"""promote, notes, deploy, history, rollback and audit verify as a user runs them."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import click
import pytest

from devtrack.cli import cli as root_group
from devtrack.cli.lifecycle_cmds import COMMANDS
from devtrack.workspace import DOT_DIR
from tests.conftest import snapshot_workspace
from tests.test_cli_errors import assert_clean_error
from tests.test_lifecycle import PROFILE, build_scenario, record_check


@pytest.fixture(scope="module")
def scenario_template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
                      mlp_onnx_b: Path) -> Path:
    """The benched lifecycle scenario of test_lifecycle, built once for this module."""
    return build_scenario(tmp_path_factory.mktemp("cli-lifecycle"), mlp_onnx, mlp_onnx_b)


@pytest.fixture
def ws_root(scenario_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the benched scenario (1.5 live on tiny), as the current folder."""
    root = tmp_path / "ws"
    shutil.copytree(scenario_template, root)
    monkeypatch.chdir(root)
    return root


def test_issue_rollback_scenario_dry_run_then_for_real(ws_root: Path, run_cli) -> None:
    before = snapshot_workspace(ws_root)
    dry = run_cli("rollback", "kws", "--profile", PROFILE, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.err
    assert snapshot_workspace(ws_root) == before
    plan = json.loads(dry.out)
    assert (plan["current"], plan["target"], plan["dry_run"]) == ("1.5", "1.1", True)
    why = {a["version"]: a["reasons"] for a in plan["ranked"]}
    assert why["1.4"] == ["rejected"]
    assert why["1.3"] == ["not measured on tiny under its current conditions"]
    assert why["1.2"][0].startswith("fails budget latency_p90_ms")

    done = run_cli("rollback", "kws", "--profile", PROFILE, "--reason", "1.5 crashes")
    assert done.exit_code == 0, done.err
    assert "kws on tiny: 1.5 → 1.1" in done.out
    assert "Deployed kws@1.1 on tiny (replaces kws@1.5)" in done.out
    rows = json.loads(run_cli("history", "kws", "--json").out)
    assert [(r["kind"], r["version"], r["replaced"], r["live"]) for r in rows] == [
        ("deploy", "1.5", None, False), ("rollback", "1.1", "1.5", True)]
    assert rows[1]["reason"] == "1.5 crashes" and rows[1]["deployed_by"] == "tester"


def test_dry_run_text_shows_the_proposal_and_every_reason(ws_root: Path, run_cli) -> None:
    result = run_cli("rollback", "kws", "-p", PROFILE, "--dry-run")
    assert result.exit_code == 0, result.err
    out = result.out
    assert "dry run: nothing was changed" in out
    for needle in ("chosen", "rejected", "not measured on tiny", "fails budget",
                   "eligible, but older than 1.1", "is the current deployment"):
        assert needle in out


def test_deploy_without_notes_exits_2_and_changes_nothing(ws_root: Path, mlp_onnx: Path,
                                                          run_cli) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.6").exit_code == 0
    before = snapshot_workspace(ws_root)
    result = run_cli("deploy", "kws@1.6", "-p", PROFILE, "--reason", "ship", "--force")
    assert_clean_error(result, "kws@1.6 has no release notes", "devtrack notes kws@1.6")
    assert snapshot_workspace(ws_root) == before
    assert run_cli("notes", "kws@1.6", "--set", "re-export").exit_code == 0
    assert run_cli("deploy", "kws@1.6", "-p", PROFILE, "--reason", "ship",
                   "--force").exit_code == 0


def test_deploy_without_a_passing_check_exits_2_and_says_how_to_fix(ws_root: Path,
                                                                   run_cli) -> None:
    before = snapshot_workspace(ws_root)
    result = run_cli("deploy", "kws@1.1", "-p", PROFILE, "--reason", "ship")
    assert_clean_error(result, "no check on tiny", "devtrack check kws@1.1 --profile tiny",
                       "--force")
    assert snapshot_workspace(ws_root) == before


def test_force_is_recorded_in_history_and_the_log(ws_root: Path, run_cli) -> None:
    result = run_cli("deploy", "kws@1.1", "-p", PROFILE, "--reason", "hotfix", "--force")
    assert result.exit_code == 0, result.err
    assert "forced" in result.out
    rows = json.loads(run_cli("history", "kws", "-p", PROFILE, "--json").out)
    assert rows[-1]["forced"] is True and rows[-1]["replaced"] == "1.5"
    history = run_cli("history", "kws").out
    assert "→ live  tiny  forced deploy 1.1  by " in history
    assert "hotfix (replaced 1.5)" in history
    assert max(len(line) for line in history.splitlines()) <= 80
    [event] = [e for e in json.loads(run_cli("log", "kws", "--kind", "deploy", "--json").out)
               if e["version"] == "1.1"]
    assert event["payload"]["forced"] is True and event["reason"] == "hotfix"


def test_deploy_with_a_check_reports_it(ws_root: Path, run_cli) -> None:
    check_id, passed = record_check(ws_root, "kws@1.1")
    assert passed
    result = run_cli("deploy", "kws@1.1", "-p", PROFILE, "--reason", "ship", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert (data["check_id"], data["forced"], data["replaced"]) == (check_id, False, "1.5")


def test_rollback_to_a_yanked_release_exits_2_and_changes_nothing(ws_root: Path,
                                                                  run_cli) -> None:
    assert run_cli("promote", "kws@1.1", "--to", "yanked", "--reason", "bad").exit_code == 0
    before = snapshot_workspace(ws_root)
    result = run_cli("rollback", "kws", "-p", PROFILE, "--reason", "back", "--to", "1.1")
    assert_clean_error(result, "1.1 cannot be rolled back to on tiny: yanked")
    assert snapshot_workspace(ws_root) == before


def test_no_rollback_candidate_exits_1_with_the_reasons(ws_root: Path, run_cli) -> None:
    for version in ("1.0", "1.1"):
        run_cli("promote", f"kws@{version}", "--to", "rejected", "--reason", "regression")
    before = snapshot_workspace(ws_root)
    result = run_cli("rollback", "kws", "-p", PROFILE, "--reason", "back")
    assert result.exit_code == 1
    assert "no release before 1.5 qualifies on tiny" in result.err
    assert "rejected" in result.out and "fails budget" in result.out
    assert snapshot_workspace(ws_root) == before
    as_json = run_cli("rollback", "kws", "-p", PROFILE, "--dry-run", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.out)["target"] is None


def test_rollback_without_reason_is_a_usage_error_unless_dry_run(ws_root: Path,
                                                                 run_cli) -> None:
    assert_clean_error(run_cli("rollback", "kws", "-p", PROFILE), "needs a reason")
    assert run_cli("rollback", "kws", "-p", PROFILE, "--dry-run").exit_code == 0


@pytest.mark.parametrize(("args", "needle"), [
    (("promote", "kws@1.4", "--to", "rejected", "--reason", "x"), "already rejected"),
    (("promote", "kws@1.5", "--to", "approved", "--reason", " "), "needs a reason"),
    (("promote", "kws@9.9", "--to", "approved", "--reason", "x"), "unknown release kws@9.9"),
    (("deploy", "kws@1.4", "-p", PROFILE, "--reason", "x", "--force"), "is rejected"),
    (("deploy", "kws@1.1", "-p", "nope", "--reason", "x"), "unknown device profile 'nope'"),
    (("history", "nokws"), "unknown model 'nokws'"),
    (("notes", "kws@1.1"), "--set TEXT or --file PATH"),
])
def test_bad_input_is_one_line_exit_2_nothing_changed(ws_root: Path, run_cli,
                                                      args: tuple[str, ...],
                                                      needle: str) -> None:
    before = snapshot_workspace(ws_root)
    assert_clean_error(run_cli(*args), needle)
    assert snapshot_workspace(ws_root) == before


def test_promote_prints_the_change_and_warns_when_still_live(ws_root: Path, run_cli) -> None:
    result = run_cli("promote", "kws@1.5", "--to", "yanked", "--reason", "crash")
    assert result.exit_code == 0, result.err
    assert "kws@1.5: candidate → yanked" in result.out
    assert "still deployed on tiny" in result.out
    assert "devtrack rollback kws --profile tiny" in result.out


def test_user_text_is_shown_literally(ws_root: Path, run_cli) -> None:
    reason = "[red]not red[/red] [bold]x"
    assert run_cli("deploy", "kws@1.1", "-p", PROFILE, "--reason", reason,
                   "--force").exit_code == 0
    assert reason in run_cli("history", "kws").out


def test_output_fits_80_columns(ws_root: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_reason = "the p99 latency doubled on the new kernel driver " * 3
    run_cli("rollback", "kws", "-p", PROFILE, "--reason", long_reason)
    for args in (("history", "kws"), ("rollback", "kws", "-p", PROFILE, "--dry-run")):
        result = run_cli(*args)
        assert result.exit_code == 0, result.err
        assert max(len(line) for line in result.out.splitlines()) <= 80, result.out
    assert "kernel driver" in run_cli("history", "kws").out


def test_audit_verify_passes_then_names_a_hand_edited_event(ws_root: Path, run_cli) -> None:
    ok = run_cli("audit", "verify")
    assert ok.exit_code == 0 and "Audit trail intact" in ok.out
    conn = sqlite3.connect(ws_root / DOT_DIR / "devtrack.db")
    with conn:
        target = conn.execute("SELECT id FROM events WHERE kind = 'promote' "
                              "ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE events SET reason = 'approved by the boss' WHERE id = ?",
                     (target,))
    conn.close()
    broken = run_cli("audit", "verify")
    assert broken.exit_code == 1
    assert f"event {target} (promote) was altered" in broken.err
    as_json = run_cli("audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.out)["problem"]["event_id"] == target


def test_history_of_a_model_never_deployed_says_how(ws_root: Path, run_cli) -> None:
    result = run_cli("history", "kws", "-p", "ci-host")
    assert result.exit_code == 0
    assert "never deployed on ci-host" in result.out and "devtrack deploy" in result.out
    assert json.loads(run_cli("history", "kws", "-p", "ci-host", "--json").out) == []


def _walk(command: click.Command) -> list[click.Command]:
    if isinstance(command, click.Group):
        return [command] + [c for sub in command.commands.values() for c in _walk(sub)]
    return [command]


@pytest.mark.parametrize("command", [c for top in COMMANDS for c in _walk(top)],
                         ids=lambda c: c.name)
def test_every_lifecycle_command_has_help_with_an_example(command: click.Command) -> None:
    assert command.help and "Example" in command.help


def test_lifecycle_commands_are_registered() -> None:
    ctx = click.Context(root_group)
    for command in COMMANDS:
        assert root_group.get_command(ctx, command.name or "") is command


def test_parent_deployed_is_the_release_live_now(ws_root: Path, mlp_onnx: Path,
                                                 run_cli) -> None:
    """A CI runner knows the baseline only as "what is deployed": --parent deployed."""
    done = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.6", "--parent", "deployed",
                   "--notes", "child of what runs", "--json")
    assert done.exit_code == 0, done.err
    assert json.loads(done.out)["parent"] == "1.5"  # 1.5 is live on tiny
    [event] = [e for e in json.loads(run_cli("log", "kws", "--kind", "register",
                                             "--json").out) if e["version"] == "1.6"]
    assert event["payload"]["parent"] == "1.5"  # sealed as the version, not the alias
    assert run_cli("audit", "verify").exit_code == 0

    # a new line with nothing deployed: its first release, no parent, and a note saying so
    first = run_cli("register", mlp_onnx, "-m", "asr", "-v", "0.1", "--parent", "deployed",
                    "--notes", "first", "--json")
    assert first.exit_code == 0, first.err
    assert json.loads(first.out)["parent"] is None
    assert "--parent deployed: no release of asr is deployed; registered without a parent" \
        in first.err

    # two profiles running two releases: ambiguous, exit 2, nothing registered
    assert run_cli("deploy", "kws@1.1", "-p", "ci-host", "--reason", "lab", "--force"
                   ).exit_code == 0
    before = snapshot_workspace(ws_root)
    ambiguous = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.7", "--parent", "deployed",
                        "--notes", "which one")
    assert_clean_error(ambiguous, "--parent deployed is ambiguous: kws has 1.1 on ci-host, "
                                  "1.5 on tiny; give --parent VERSION")
    assert snapshot_workspace(ws_root) == before
