"""Lifecycle library: status changes, deployments, history, rollback and the audit chain.

Real tiny models, real benchmark runs on a fast workspace profile, real ``devtrack check
--no-rerun`` verdicts. Accuracies come from real evaluations (``add_accuracy``: a dataset
whose labels the model scores the wanted accuracy on), so the workspace verifies clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtrack.auditing import verify_audit
from devtrack.cli import main
from devtrack.errors import CheckFailed, NotFoundError, UsageError
from devtrack.lifecycle import (
    TRANSITIONS,
    NoRollbackTarget,
    NothingDeployed,
    RollbackRefused,
    current_deployment,
    current_deployments,
    deploy,
    deployed_release,
    history,
    promote,
    resolve_release,
    rollback,
    rollback_plan,
    set_notes,
)
from devtrack.registry import get_release
from devtrack.workspace import Workspace, open_workspace
from tests.conftest import WorkspaceFactory, raw_sql, snapshot_workspace

pytestmark = pytest.mark.both_backends

PROFILE = "tiny"
# The matmul chain (~1 ms a run here) breaks the latency budget; the MLP (~0.005 ms) is far
# inside it, so the verdicts hold on a busy machine. timeout_s is short but fits what the
# worker needs (core/limits.py), so bench honours it and runs store the file's own hash.
TINY_PROFILE = """
name = "tiny"
description = "fast settings for lifecycle tests"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 20
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = 0.1
max_time_s = 0.5
target_rel_ci = 0.05
[budgets]
latency_p90_ms = 0.25
min_accuracy = 0.5
"""
# version -> (model file, status, benched on tiny). Registration order is release order.
SCENARIO = {
    "1.0": ("mlp", "approved", True),  # qualifies, but older than 1.1
    "1.1": ("mlp", "approved", True),  # the rollback target
    "1.2": ("slow", "approved", True),  # fails its latency budget
    "1.3": ("mlp", "approved", False),  # no results on the profile
    "1.4": ("mlp", "rejected", True),  # the newest earlier release: rejected
    "1.5": ("mlp_b", "candidate", True),  # deployed: the one to roll back from
}


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def record_check(root: Path, ref: str, profile: str = PROFILE) -> tuple[int, bool]:
    """Run ``devtrack check REF --profile P --no-rerun``; the stored check's id and verdict."""
    code = cli("check", ref, "--profile", profile, "--no-rerun", "-w", root)
    assert code in (0, 1), code
    with open_workspace(root) as ws:
        row = ws.store.one("SELECT id, passed FROM checks ORDER BY id DESC LIMIT 1")
    assert row is not None and bool(row["passed"]) == (code == 0)
    return int(row["id"]), bool(row["passed"])


def labels_scoring(root: Path, version: str, accuracy: float,
                   samples: int = 10) -> tuple[dict[str, object], str]:
    """Inputs for kws@VERSION and labels its model scores ``accuracy`` on (its own top-1
    answers, the first ones shifted by one class), and the dataset's name."""
    import numpy as np
    import onnxruntime as ort

    with open_workspace(root) as ws:
        release = get_release(ws, f"kws@{version}")
        path = ws.artifacts.path_for(release.sha256)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (info,) = session.get_inputs()
    shape = [1 if not isinstance(d, int) else d for d in info.shape]
    batched = shape[0] == 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, *(shape[1:] if batched else shape))).astype(np.float32)
    scores = [session.run(None, {info.name: row[None] if batched else row})[0].reshape(-1)
              for row in x]
    labels = np.array([int(s.argmax()) for s in scores])
    wrong = round(samples * (1 - accuracy))
    classes = scores[0].size
    labels[:wrong] = (labels[:wrong] + 1) % classes
    name = f"acc-{release.sha256[:8]}-{round(accuracy * 100)}"
    return {info.name: x, "labels": labels}, name


def add_accuracy(root: Path, versions: str | list[str], accuracy: float) -> None:
    """Bench kws@VERSION(s) (one artifact) on tiny, evaluated on a dataset it scores
    ``accuracy`` on: its newest run then has that accuracy, written by devtrack itself."""
    import numpy as np

    chosen = [versions] if isinstance(versions, str) else versions
    arrays, name = labels_scoring(root, chosen[0], accuracy)
    with open_workspace(root) as ws:
        known = ws.store.one("SELECT id FROM datasets WHERE name = ?", (name,))
    if known is None:
        npz = root.parent / f"{name}.npz"
        np.savez(npz, **arrays)  # type: ignore[arg-type]
        assert cli("dataset", "add", npz, "--name", name, "-w", root) == 0
    assert cli("bench", *[f"kws@{v}" for v in chosen], "-p", PROFILE, "--eval", name,
               "-w", root) == 0


def build_scenario(base: Path, mlp_onnx: Path, mlp_onnx_b: Path,
                   workspaces: WorkspaceFactory | None = None) -> Path:
    """A workspace under ``base`` holding SCENARIO, benched (accuracy 0.9), with 1.5 deployed
    on tiny; everything through the CLI, so it verifies clean. ``workspaces`` creates it on
    its backend (else ``devtrack init``: SQLite)."""
    from devtrack.builders.onnx_models import build_matmul_chain

    slow = build_matmul_chain(base / "slow.onnx", size=256, layers=7)
    files = {"mlp": mlp_onnx, "mlp_b": mlp_onnx_b, "slow": slow}
    root = base / "ws"
    if workspaces is not None:
        workspaces.init(root)
    else:
        assert cli("init", root) == 0
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    for version, (model_file, _, _) in SCENARIO.items():
        assert cli("register", files[model_file], "-m", "kws", "-v", version, "--notes",
                   f"build {version}", "-w", root) == 0
    by_file: dict[str, list[str]] = {}
    for version, (model_file, _, benched) in SCENARIO.items():
        if benched:
            by_file.setdefault(model_file, []).append(version)
    for versions in by_file.values():
        add_accuracy(root, versions, 0.9)
    for version, (_, status, _) in SCENARIO.items():
        if status != "candidate":
            assert cli("promote", f"kws@{version}", "--to", status, "--reason", "review",
                       "-w", root) == 0
    assert record_check(root, "kws@1.5")[1]
    assert cli("deploy", "kws@1.5", "-p", PROFILE, "--reason", "new build", "-w", root) == 0
    return root


@pytest.fixture(scope="module")
def scenario_template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
                      mlp_onnx_b: Path, module_workspaces: WorkspaceFactory) -> Path:
    """The scenario, built once per module (and backend); tests work on copies."""
    return build_scenario(tmp_path_factory.mktemp("lifecycle"), mlp_onnx, mlp_onnx_b,
                          module_workspaces)


@pytest.fixture
def root(scenario_template: Path, tmp_path: Path, workspaces: WorkspaceFactory) -> Path:
    return workspaces.copy(scenario_template, tmp_path / "ws")


@pytest.fixture
def ws(root: Path) -> Iterator[Workspace]:
    with open_workspace(root) as opened:
        yield opened


def event_kinds(ws: Workspace) -> list[str]:
    return [e["kind"] for e in ws.store.events()]


# -- promote --------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "to"), [(s, t) for s, targets in TRANSITIONS.items()
                                           for t in targets if s != "candidate"])
def test_allowed_transitions_change_status_and_write_an_event(ws: Workspace, start: str,
                                                              to: str) -> None:
    ref = {"approved": "kws@1.0", "rejected": "kws@1.4"}[start]
    result = promote(ws, ref, to, "second look")
    assert (result.previous, result.status) == (start, to)
    assert get_release(ws, ref).status == to
    last = ws.store.events()[-1]
    assert (last["kind"], last["reason"]) == ("promote", "second look")
    assert json.loads(last["payload"])["from"] == start


@pytest.mark.parametrize(("ref", "to", "needle"), [
    ("kws@1.0", "approved", "already approved"),
    ("kws@1.0", "candidate", "choose one of"),
    ("kws@1.4", "rejected", "already rejected"),
])
def test_no_op_or_unknown_status_is_a_usage_error(root: Path, ws: Workspace, ref: str,
                                                  to: str, needle: str) -> None:
    before = snapshot_workspace(root)
    with pytest.raises(UsageError, match=needle):
        promote(ws, ref, to, "why")
    assert snapshot_workspace(root) == before


def test_yank_is_final(ws: Workspace) -> None:
    promote(ws, "kws@1.0", "yanked", "bad calibration")
    for to in ("approved", "rejected"):
        with pytest.raises(UsageError, match="a yanked release stays yanked"):
            promote(ws, "kws@1.0", to, "oops")


@pytest.mark.parametrize("reason", ["", "   "])
def test_promote_needs_a_reason(ws: Workspace, reason: str) -> None:
    with pytest.raises(UsageError, match="needs a reason"):
        promote(ws, "kws@1.5", "approved", reason)
    assert get_release(ws, "kws@1.5").status == "candidate"


def test_yanking_the_live_release_warns_where_it_is_still_deployed(ws: Workspace) -> None:
    result = promote(ws, "kws@1.5", "yanked", "crashes")
    assert result.still_deployed_on == (PROFILE,)


# -- deploy ---------------------------------------------------------------------------------


def test_deploy_replaces_the_live_release_and_keeps_the_history(root: Path,
                                                                ws: Workspace) -> None:
    check_id, passed = record_check(root, "kws@1.1")
    assert passed
    d = deploy(ws, "kws@1.1", PROFILE, "back to the stable build")
    assert (d.version, d.replaced, d.forced, d.check_id, d.kind) == (
        "1.1", "1.5", False, check_id, "deploy")
    rows = history(ws, "kws", PROFILE)
    assert [(h.version, h.replaced, h.live) for h in rows] == [
        ("1.5", None, False), ("1.1", "1.5", True)]
    assert rows[0].ended_at == rows[1].deployed_at
    assert current_deployment(ws, "kws", PROFILE) == rows[1]
    assert current_deployments(ws, "kws") == {PROFILE: rows[1]}
    assert deployed_release(ws, "kws", PROFILE).version == "1.1"
    assert resolve_release(ws, "kws@deployed", PROFILE).version == "1.1"
    payload = json.loads(ws.store.events(kind="deploy")[-1]["payload"])
    assert payload["replaced"] == "1.5" and payload["forced"] is False
    assert payload["check"] == check_id


def test_deploy_without_notes_is_refused_and_changes_nothing(root: Path, ws: Workspace,
                                                             mlp_onnx: Path) -> None:
    assert cli("register", mlp_onnx, "-m", "kws", "-v", "1.6", "-w", root) == 0
    before = snapshot_workspace(root)
    with pytest.raises(UsageError, match="has no release notes"):
        deploy(ws, "kws@1.6", PROFILE, "ship", force=True)  # --force does not cover notes
    assert snapshot_workspace(root) == before
    set_notes(ws, "kws@1.6", "same weights, new export")
    assert deploy(ws, "kws@1.6", PROFILE, "ship", force=True).version == "1.6"
    assert event_kinds(ws)[-2:] == ["notes", "deploy"]


@pytest.mark.parametrize(("ref", "setup", "needle"), [
    ("kws@1.1", None, "it has no check on tiny"),
    ("kws@1.2", "check", "its latest check on tiny (#"),  # over its latency budget
    ("kws@1.1", "worse", "its latest check on tiny (#"),  # passed, then failed: latest counts
    ("kws@1.1", "edit", "were made under an older version of the profile"),
])
def test_deploy_without_a_passing_check_is_refused(root: Path, ws: Workspace, ref: str,
                                                   setup: str | None, needle: str) -> None:
    if setup is not None:
        record_check(root, ref)
    if setup == "worse":
        add_accuracy(root, "1.1", 0.3)
        assert record_check(root, ref)[1] is False
    elif setup == "edit":
        profile_file = root / "device_profiles" / "tiny.toml"
        profile_file.write_text(TINY_PROFILE.replace("min_runs = 10", "min_runs = 11"))
    before = snapshot_workspace(root)
    with pytest.raises(UsageError) as info:
        deploy(ws, ref, PROFILE, "try")
    assert needle in str(info.value)
    assert f"devtrack check {ref} --profile tiny" in str(info.value)
    assert "--force" in str(info.value)
    assert snapshot_workspace(root) == before


def test_force_deploys_without_a_check_and_records_the_override(ws: Workspace) -> None:
    d = deploy(ws, "kws@1.1", PROFILE, "hotfix, check later", force=True)
    assert d.forced and d.check_id is None
    event = ws.store.events(kind="deploy")[-1]
    payload = json.loads(event["payload"])
    assert payload["forced"] is True
    assert payload["overridden"] == "it has no check on tiny"
    assert event["reason"] == "hotfix, check later"


def test_force_with_a_passing_check_is_not_recorded_as_an_override(root: Path,
                                                                   ws: Workspace) -> None:
    check_id, _ = record_check(root, "kws@1.1")
    d = deploy(ws, "kws@1.1", PROFILE, "ship", force=True)
    assert (d.forced, d.check_id) == (False, check_id)


@pytest.mark.parametrize(("ref", "needle"), [
    ("kws@1.4", "is rejected and cannot be deployed"),
    ("kws@1.5", "already deployed on tiny"),
])
def test_deploy_refuses_rejected_or_already_live_releases_even_forced(
        root: Path, ws: Workspace, ref: str, needle: str) -> None:
    before = snapshot_workspace(root)
    with pytest.raises(UsageError, match=needle):
        deploy(ws, ref, PROFILE, "try", force=True)
    assert snapshot_workspace(root) == before


def test_deploy_on_an_unknown_profile_or_format_is_a_usage_error(ws: Workspace,
                                                                 root: Path,
                                                                 mlp_tflite: Path) -> None:
    with pytest.raises(NotFoundError, match="unknown device profile 'tiyn'"):
        deploy(ws, "kws@1.1", "tiyn", "ship", force=True)
    assert cli("register", mlp_tflite, "-m", "kws", "-v", "1.7", "--notes", "tflite",
               "-w", root) == 0
    with pytest.raises(UsageError, match="does not run tflite models"):
        deploy(ws, "kws@1.7", PROFILE, "ship", force=True)


def test_deployed_alias_needs_something_deployed(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="nothing of kws is deployed on ci-host"):
        resolve_release(ws, "kws@deployed", "ci-host")


# -- rollback -------------------------------------------------------------------------------


def test_rollback_skips_rejected_unmeasured_and_over_budget_releases(ws: Workspace) -> None:
    result = rollback(ws, "kws", PROFILE, "1.5 crashes on start")
    plan = result.plan
    assert (plan.current, plan.target) == ("1.5", "1.1")
    why = {a.version: a.reasons for a in plan.ranked}
    assert why["1.4"] == ("rejected",)
    assert why["1.3"] == ("not measured on tiny under its current conditions",)
    assert why["1.2"][0].startswith("fails budget latency_p90_ms (p90 ")
    assert why["1.0"] == ("eligible, but older than 1.1",)
    d = result.deployment
    assert d is not None and (d.kind, d.version, d.replaced) == ("rollback", "1.1", "1.5")
    assert current_deployment(ws, "kws", PROFILE) == d
    event = ws.store.events()[-1]
    assert (event["kind"], event["version"], event["reason"]) == (
        "rollback", "1.1", "1.5 crashes on start")
    assert json.loads(event["payload"])["passed_over"]["1.4"] == "rejected"


def test_dry_run_writes_nothing_at_all(root: Path, ws: Workspace) -> None:
    before = snapshot_workspace(root)
    result = rollback(ws, "kws", PROFILE, None, dry_run=True)
    assert result.deployment is None and result.plan.target == "1.1"
    assert rollback_plan(ws, "kws", PROFILE).target == "1.1"
    assert snapshot_workspace(root) == before


@pytest.mark.parametrize(("accuracy", "target", "reason"), [
    (0.3, "1.0", "fails budget min_accuracy (accuracy 0.3 < 0.5)"),
    (None, "1.0", "fails budget min_accuracy (accuracy not measured)"),
    (0.5, "1.1", None),
])
def test_rollback_judges_accuracy_from_the_newest_evaluation(root: Path, accuracy: float | None,
                                                             target: str,
                                                             reason: str | None) -> None:
    if accuracy is None:
        with open_workspace(root) as ws, ws.store.transaction():
            ws.store.execute("DELETE FROM evaluations WHERE run_id IN (SELECT runs.id FROM "
                             "runs JOIN releases r ON r.id = runs.release_id WHERE "
                             "r.version = '1.1')")
    else:
        add_accuracy(root, "1.1", accuracy)
    with open_workspace(root) as ws:
        plan = rollback_plan(ws, "kws", PROFILE)
    assert plan.target == target
    if reason is not None:
        assert plan.assessment("1.1").reasons == (reason,)


def test_a_failed_latest_run_disqualifies_a_release(root: Path, ws: Workspace) -> None:
    # A failed run under the same settings, as a worker that hit the memory cap leaves it.
    with ws.store.transaction():
        ws.store.execute(
            "INSERT INTO runs (release_id, profile, profile_hash, profile_snapshot, "
            "conditions_hash, status, error, started_at, finished_at, actor, host) SELECT "
            "release_id, profile, profile_hash, profile_snapshot, conditions_hash, 'failed', "
            "'out of memory (cap 64 MB)', "
            "started_at, finished_at, actor, host FROM runs WHERE id = (SELECT runs.id FROM "
            "runs JOIN releases r ON r.id = runs.release_id WHERE r.version = '1.1')")
    plan = rollback_plan(ws, "kws", PROFILE)
    assert plan.target == "1.0"
    assert plan.assessment("1.1").reasons == (
        "its latest run on tiny failed: out of memory (cap 64 MB)",)


@pytest.mark.parametrize(("to", "error", "needle"), [
    ("1.4", RollbackRefused, "1.4 cannot be rolled back to on tiny: rejected"),
    ("1.5", RollbackRefused, "is the current deployment"),
    ("1.2", NoRollbackTarget, "fails budget latency_p90_ms"),
    ("1.3", NoRollbackTarget, "not measured on tiny"),
])
def test_rollback_to_a_release_that_does_not_qualify(root: Path, ws: Workspace, to: str,
                                                     error: type[Exception],
                                                     needle: str) -> None:
    before = snapshot_workspace(root)
    with pytest.raises(error, match=needle):
        rollback(ws, "kws", PROFILE, "try", to=to)
    assert snapshot_workspace(root) == before


def test_rollback_to_a_yanked_release_is_a_usage_error(root: Path, ws: Workspace) -> None:
    promote(ws, "kws@1.0", "yanked", "bad calibration")
    before = snapshot_workspace(root)
    with pytest.raises(UsageError, match="yanked"):
        rollback(ws, "kws", PROFILE, "go back", to="1.0")
    assert snapshot_workspace(root) == before
    assert rollback(ws, "kws", PROFILE, "go back", to="1.1").plan.target == "1.1"


def test_rollback_with_no_candidate_fails_the_check(root: Path, ws: Workspace) -> None:
    for version in ("1.0", "1.1"):
        promote(ws, f"kws@{version}", "rejected", "regression found")
    with pytest.raises(NoRollbackTarget) as info:
        rollback(ws, "kws", PROFILE, "go back")
    assert isinstance(info.value, CheckFailed) and info.value.exit_code == 1
    assert "no release before 1.5 qualifies on tiny" in str(info.value)
    assert info.value.plan.target is None


def test_changed_conditions_make_old_results_not_count(root: Path, ws: Workspace) -> None:
    profile_file = root / "device_profiles" / "tiny.toml"
    profile_file.write_text(TINY_PROFILE.replace("threads = 1", "threads = 2"))
    with pytest.raises(NoRollbackTarget) as info:
        rollback(ws, "kws", PROFILE, None, dry_run=True)
    assert info.value.plan.assessment("1.1").reasons == (
        "not measured on tiny under its current conditions (1 ok run under other conditions "
        "does not count; bench it again)",)


def test_a_changed_stopping_rule_keeps_old_results(root: Path, ws: Workspace) -> None:
    profile_file = root / "device_profiles" / "tiny.toml"
    profile_file.write_text(TINY_PROFILE.replace("min_runs = 10", "min_runs = 11"))
    assert rollback(ws, "kws", PROFILE, None, dry_run=True).plan.target == "1.1"


@pytest.mark.parametrize(("profile", "reason", "to", "error", "needle"), [
    (PROFILE, "", None, UsageError, "a rollback needs a reason"),
    (PROFILE, "x", "9.9", NotFoundError, "unknown release kws@9.9"),
    ("ci-host", "x", None, NothingDeployed, "nothing of kws is deployed on ci-host"),
])
def test_rollback_usage_errors(root: Path, ws: Workspace, profile: str, reason: str,
                               to: str | None, error: type[Exception], needle: str) -> None:
    before = snapshot_workspace(root)
    with pytest.raises(error, match=needle):
        rollback(ws, "kws", profile, reason, to=to)
    assert snapshot_workspace(root) == before


# -- audit ----------------------------------------------------------------------------------


def test_every_action_writes_one_event(root: Path, ws: Workspace) -> None:
    assert record_check(root, "kws@1.1")[1]
    assert ws.store.events()[-1]["kind"] == "check"
    actions = [
        ("promote", lambda: promote(ws, "kws@1.5", "approved", "fine")),
        ("notes", lambda: set_notes(ws, "kws@1.1", "stable build")),
        ("deploy", lambda: deploy(ws, "kws@1.1", PROFILE, "stable")),
        ("rollback", lambda: rollback(ws, "kws", PROFILE, "undo", to="1.0")),
    ]
    for kind, action in actions:
        count = len(ws.store.events())
        action()
        events = ws.store.events()
        assert len(events) == count + 1 and events[-1]["kind"] == kind
    assert verify_audit(ws).ok


@pytest.mark.parametrize(("column", "value"), [
    ("reason", "'nothing to see'"), ("actor", "'mallory'"), ("ts", "'2000-01-01T00:00:00Z'"),
    ("payload", "'{}'"), ("kind", "'register'"), ("version", "'9.9'"),
])
def test_editing_any_event_row_breaks_the_chain_at_that_event(root: Path, column: str,
                                                              value: str) -> None:
    target = raw_sql(root, "SELECT id FROM events WHERE kind = 'deploy'")[0][0]
    raw_sql(root, f"UPDATE events SET {column} = {value} WHERE id = {target}")
    with open_workspace(root) as ws:
        result = verify_audit(ws)
    assert not result.ok and result.problem is not None
    assert result.problem.event_id == target
    assert f"event {target}" in result.problem.message


def test_deleting_an_event_row_is_named(root: Path) -> None:
    raw_sql(root, "DELETE FROM events WHERE id = 3")
    with open_workspace(root) as ws:
        result = verify_audit(ws)
    assert result.problem is not None and result.problem.event_id == 3
    assert "event 3 is missing" in result.problem.message


def test_intact_chain_counts_every_event(ws: Workspace) -> None:
    result = verify_audit(ws)
    assert result.ok and result.events == len(ws.store.events())
    report = result.to_dict()
    assert report.pop("files")["problems"] == []
    assert report == {"ok": True, "events": result.events, "problem": None,
                      "state_problems": []}


def _damage(root: Path, version: str, how: str) -> Path:
    """Modify (same size) or delete the stored artifact of kws@VERSION; its relative path."""
    with open_workspace(root) as ws:
        path = ws.artifacts.path_for(get_release(ws, f"kws@{version}").sha256)
    path.chmod(0o644)
    if how == "missing":
        path.unlink()
    else:
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    return path.relative_to(root)


@pytest.mark.parametrize("how", ["modified", "missing"])
@pytest.mark.parametrize("args", [
    ("deploy", "kws@1.1", "-p", PROFILE, "--reason", "hotfix", "--force"),
    ("deploy", "kws@1.1", "-p", PROFILE, "--reason", "hotfix"),
    ("rollback", "kws", "-p", PROFILE, "--reason", "crash reports"),  # target: 1.1
    ("rollback", "kws", "-p", PROFILE, "--dry-run"),
    ("rollback", "kws", "-p", PROFILE, "--to", "1.1", "--reason", "back"),
], ids=["deploy-force", "deploy", "rollback", "rollback-dry-run", "rollback-to"])
def test_a_damaged_artifact_is_never_deployed_even_forced(
        root: Path, capsys: pytest.CaptureFixture[str], how: str,
        args: tuple[str, ...]) -> None:
    path = _damage(root, "1.1", how)
    before = snapshot_workspace(root)
    capsys.readouterr()
    assert cli(*args, "-w", root) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot "), err
    assert "kws@1.1" in err[0] and str(path) in err[0], err
    assert ("is missing" if how == "missing" else "was modified") in err[0]
    assert "--force never overrides this" in err[0]
    assert snapshot_workspace(root) == before


def test_approving_needs_an_intact_artifact_rejecting_does_not(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _damage(root, "1.5", "modified")
    capsys.readouterr()
    assert cli("promote", "kws@1.5", "--to", "approved", "--reason", "ok", "-w", root) == 2
    err = capsys.readouterr().err
    assert f"cannot approve kws@1.5: its artifact {path} was modified" in err
    assert cli("promote", "kws@1.5", "--to", "rejected", "--reason", "damaged", "-w",
               root) == 0
