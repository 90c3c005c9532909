"""End to end: a nightly ``check --bench`` that finds a real regression posts one message a
reviewer can act on; a passing check posts nothing; a hanging target costs one warning line.

Real models (a MatMul chain and one with twice the layers, from tests/test_comparison.py),
real side-by-side measurement, a real HTTP server on 127.0.0.1, no patching of Apprise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtrack.workspace import open_workspace
from tests import hook_server
from tests.test_comparison import review_copy

hook = hook_server.hook
hanging = hook_server.hanging
Hook = hook_server.Hook


@pytest.fixture
def review_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """mm@1.0, mm@1.1 (same bytes) and mm@2.0 (2x the work), measured on ``tiny``."""
    return review_copy(tmp_path_factory, tmp_path / "ws", monkeypatch)


def test_a_regression_posts_one_actionable_message_and_nothing_else_does(
        review_ws: Path, run_cli, hook: Hook, hanging: Hook) -> None:
    url = hook.url("json", "nightly")
    passing = run_cli("check", "mm@1.1", "--profile", "tiny", "--notify", url)
    assert passing.exit_code == 0, passing.out + passing.err
    assert hook.requests == [] and passing.err.count("warning") == 0

    deployed = run_cli("deploy", "mm@1.1", "--profile", "tiny", "--reason",
                       "same bytes as 1.0", "--notify", hook.url("form", "deploys"))
    assert deployed.exit_code == 0, deployed.err
    [deploy_post] = hook.requests
    form = deploy_post.form()
    assert form["title"] == "devtrack deploy: mm@1.1 deployed on tiny"
    for needle in ("who: tester", "what: mm@1.1 (replaces nothing)", "where: tiny",
                   "why: same bytes as 1.0"):
        assert needle in form["message"]
    hook.requests.clear()

    # The nightly check: a target that hangs (configured for the workspace, 1 s) and the
    # team's webhook. The hanging one costs one warning line, nothing else.
    (review_ws / ".devtrack" / "config.toml").write_text(
        f'[alerts]\nurls = ["{hanging.url("json", "stuck")}"]\ntimeout_s = 1\n')
    failing = run_cli("check", "mm@2.0", "--profile", "tiny", "--bench", "--notify", url)
    assert failing.exit_code == 1, failing.out + failing.err
    warnings = [line for line in failing.err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1, failing.err
    assert f":{hanging.port}/" in warnings[0] and "timed out" in warnings[0]
    [post] = hook.requests
    assert post.path == "/nightly"
    payload = post.json()
    assert payload["type"] == "failure"
    assert payload["title"].startswith("devtrack check FAILED: mm@2.0 on tiny (regression +")
    assert payload["title"].endswith("%)")
    body = payload["message"]
    for needle in ("mm@2.0 failed its check on tiny.",
                   "tiny: FAILED (baseline mm@1.1, deployed)",
                   "regression: max_latency_regression_pct: p50 latency +",
                   "exceeds max_latency_regression_pct 5",
                   "deployed on tiny: mm@1.1",
                   "Reproduce: devtrack check mm@2.0 --profile tiny --bench"):
        assert needle in body, body
    assert "95% CI" in body and "slower" in body
    assert "top contributor: 20 added MatMul nodes mm20, mm21, mm22, …: +" in body, body

    with open_workspace(review_ws) as ws:
        checks = ws.store.query("SELECT passed FROM checks ORDER BY id")
        events = ws.store.events(kind="notify")
    assert [c["passed"] for c in checks] == [1, 0]  # the failing check is stored as it was
    assert [json.loads(e["payload"])["decision"] for e in events] == ["deploy", "check"]
    attempts = json.loads(events[-1]["payload"])["targets"]
    assert sorted(a["delivered"] for a in attempts) == [False, True]
    assert run_cli("audit", "verify").exit_code == 0


def test_on_all_sends_a_passing_check_too(review_ws: Path, run_cli, hook: Hook) -> None:
    profile = review_ws / "device_profiles" / "tiny.toml"
    profile.write_text(profile.read_text().replace(
        "[execution]", f'[alerts]\nurls = ["{hook.url("json", "all")}"]\non = ["all"]\n\n'
                       "[execution]", 1))
    # Side by side (not --no-rerun): two stored runs of the same bytes can differ by more than
    # the limit on a loaded machine; measured together, the same bytes pass.
    result = run_cli("check", "mm@1.1", "--profile", "tiny")
    assert result.exit_code == 0, result.out + result.err
    [post] = hook.requests
    assert post.json()["title"] == "devtrack check passed: mm@1.1 on tiny"
    assert post.json()["type"] == "success"
    assert "mm@1.0" in post.json()["message"]  # the baseline it passed against


def test_a_rollback_posts_who_what_where_and_why(review_ws: Path, run_cli, hook: Hook) -> None:
    for version in ("1.0", "1.1"):
        done = run_cli("deploy", f"mm@{version}", "--profile", "tiny", "--reason", "r",
                       "--force")
        assert done.exit_code == 0, done.err
    profile = review_ws / "device_profiles" / "tiny.toml"
    profile.write_text(profile.read_text().replace(
        "[execution]", f'[alerts]\nurls = ["{hook.url("form", "ops")}"]\non = ["rollback"]\n\n'
                       "[execution]", 1))
    dry = run_cli("rollback", "mm", "--profile", "tiny", "--dry-run")
    assert dry.exit_code == 0 and hook.requests == []  # a dry run decides nothing
    result = run_cli("rollback", "mm", "--profile", "tiny", "--reason", "crash reports")
    assert result.exit_code == 0, result.out + result.err
    [post] = hook.requests
    form = post.form()
    assert form["title"] == "devtrack rollback: mm@1.0 is live on tiny"
    assert form["type"] == "warning"
    for needle in ("who: tester", "what: mm@1.0 (replaces mm@1.1)", "where: tiny",
                   "why: crash reports"):
        assert needle in form["message"]
    assert run_cli("audit", "verify").exit_code == 0
