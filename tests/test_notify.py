"""Alerts delivered for real: Apprise's json:// and form:// targets posting to an HTTP server
on 127.0.0.1 started here; hanging and closed targets; ``alerts test``; ``--notify`` errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from devtrack.delivery import deliver
from devtrack.workspace import open_workspace
from tests import hook_server
from tests.test_cli_errors import assert_clean_error

hook = hook_server.hook
hanging = hook_server.hanging
Hook = hook_server.Hook
SECRET = "s3cr3tT0ken42"


def notify_events(root: Path) -> list[dict]:
    with open_workspace(root) as ws:
        return [json.loads(e["payload"]) | {"_model": e["model"], "_version": e["version"]}
                for e in ws.store.events(kind="notify")]


def test_json_and_form_targets_get_title_body_and_type(hook: Hook) -> None:
    attempts = deliver([hook.url("json", f"hook/{SECRET}"), hook.url("form", "form")],
                       "the title", "line one\nline two", "failure", 5.0)
    assert [a.delivered for a in attempts] == [True, True], attempts
    assert attempts[0].target == f"json://127.0.0.1:{hook.port}/hook/s3****"
    by_path = {r.path: r for r in hook.requests}
    posted = by_path[f"/hook/{SECRET}"]
    assert posted.content_type.startswith("application/json")
    assert posted.json() | {"attachments": []} == {
        "version": "1.0", "title": "the title", "message": "line one\nline two",
        "type": "failure", "attachments": []}
    form = by_path["/form"].form()
    assert (form["title"], form["message"], form["type"]) == ("the title",
                                                              "line one\nline two", "failure")


def test_a_hanging_target_is_cut_off_at_the_timeout(hanging: Hook) -> None:
    # rto=30 asks Apprise itself to wait 30 s for an answer: devtrack's own deadline
    # must end the attempt long before that.
    started = time.monotonic()
    [attempt] = deliver([hanging.url("json", "hook") + "?rto=30"], "t", "b", "info", 1.0)
    elapsed = time.monotonic() - started
    assert not attempt.delivered
    assert attempt.error == "no answer within 1 s (timed out)"
    assert elapsed < 10


def test_a_closed_port_and_an_unknown_scheme_are_failed_attempts() -> None:
    closed = f"json://127.0.0.1:{hook_server.free_port()}/hook"
    refused, unknown = deliver([closed, f"nosuchservice://{SECRET}"], "t", "b", "info", 3.0)
    assert not refused.delivered and refused.error
    assert not unknown.delivered and "cannot use this URL" in (unknown.error or "")
    assert SECRET not in unknown.target


def test_alerts_test_sends_a_sample_and_records_the_attempt_masked(in_ws: Path, run_cli,
                                                                   hook: Hook) -> None:
    url = hook.url("json", f"hook/{SECRET}")
    result = run_cli("alerts", "test", url)
    assert result.exit_code == 0, result.err
    assert SECRET not in result.out and "delivered" in result.out
    [request] = hook.requests
    payload = request.json()
    assert payload["title"] == "devtrack test notification"
    assert "Reproduce: devtrack check" in payload["message"] and payload["type"] == "info"
    [event] = notify_events(in_ws)
    assert event["decision"] == "test"
    [attempt] = event["targets"]
    assert attempt["delivered"] is True and attempt["source"] == "--notify"
    assert SECRET not in json.dumps(event)
    log = run_cli("log", "--json")
    assert SECRET not in log.out and "notify" in log.out
    assert run_cli("audit", "verify").exit_code == 0


def test_alerts_test_uses_the_workspace_config_and_fails_with_one_line_per_target(
        in_ws: Path, run_cli, hook: Hook) -> None:
    dead = f"json://127.0.0.1:{hook_server.free_port()}/{SECRET}"
    (in_ws / ".devtrack" / "config.toml").write_text(
        f'[alerts]\nurls = ["{hook.url("form", "f")}", "{dead}"]\non = ["regression"]\n')
    listed = run_cli("alerts", "list", "--json")
    assert listed.exit_code == 0 and SECRET not in listed.out
    assert [t["on"] for t in json.loads(listed.out)] == [["regression"], ["regression"]]
    result = run_cli("alerts", "test")
    assert result.exit_code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: notification to json://127.0.0.1")
    assert SECRET not in result.err + result.out
    assert len(hook.requests) == 1
    [event] = notify_events(in_ws)
    assert [a["delivered"] for a in event["targets"]] == [True, False]


def test_alerts_test_without_any_target_is_a_usage_error(in_ws: Path, run_cli) -> None:
    assert_clean_error(run_cli("alerts", "test"), "no alert targets configured")


@pytest.mark.parametrize(("config", "needle"), [
    ('[alerts]\non = ["regressions"]\n', "alerts.on[0]: unknown value 'regressions'"),
    ('[alerts]\nurls = ["not a url"]\n', "alerts.urls[0]: not a URL"),
    ('[alert]\nurls = []\n', "alert: unknown table or key"),
    ("[alerts\n", "invalid TOML"),
])
def test_a_bad_workspace_config_fails_every_notifying_command_first(
        in_ws: Path, run_cli, config: str, needle: str, unchanged) -> None:
    (in_ws / ".devtrack" / "config.toml").write_text(config)
    assert_clean_error(run_cli("alerts", "test"), "config.toml", needle)
    assert_clean_error(run_cli("check", "kws@1", "--profile", "ci-host"), needle)
    unchanged()


@pytest.mark.parametrize("url", ["hooks.example.com/x", "json://", "json://a b", ""])
def test_a_malformed_notify_url_fails_before_any_work(in_ws: Path, mlp_onnx: Path, run_cli,
                                                      url: str) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    from tests.conftest import snapshot_workspace

    before = snapshot_workspace(in_ws)
    for args in (("check", "kws@1", "--profile", "ci-host", "--bench"),
                 ("bench", "kws@1", "--profile", "ci-host"),
                 ("deploy", "kws@1", "--profile", "ci-host", "--reason", "r"),
                 ("rollback", "kws", "--profile", "ci-host", "--reason", "r"),
                 ("alerts", "test")):
        assert_clean_error(run_cli(*args, "--notify", url) if args[0] != "alerts"
                           else run_cli(*args, url), "--notify")
    assert snapshot_workspace(in_ws) == before


def test_a_bench_with_a_failed_run_posts_its_reason_once(in_ws: Path, model_dir: Path,
                                                         run_cli, hook: Hook) -> None:
    from devtrack.builders.onnx_models import build_custom_op
    from tests.test_comparison import TINY_PROFILE

    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    path = build_custom_op(model_dir / "custom_notify.onnx")
    run_cli("register", path, "-m", "fancy", "-v", "1")
    result = run_cli("bench", "fancy@1", "--profile", "tiny", "--json",
                     "--notify", hook.url("form", "bench"))
    assert result.exit_code == 1
    assert json.loads(result.out)[0]["status"] == "failed"
    [request] = hook.requests
    form = request.form()
    assert form["title"] == "devtrack bench: 1 failed run(s) for fancy@1"
    assert "failed-run: fancy@1 on tiny:" in form["message"]
    assert "FancyGelu" in form["message"]
    assert "Reproduce: devtrack bench fancy@1 --profile tiny" in form["message"]
    assert form["type"] == "failure"


def test_a_bench_that_breaks_a_budget_posts_it_and_json_stays_clean(
        in_ws: Path, mlp_onnx: Path, run_cli, hook: Hook) -> None:
    from tests.test_gate import TIGHT_PROFILE

    (in_ws / "device_profiles" / "tight.toml").write_text(
        TIGHT_PROFILE.replace("latency_p90_ms = 0.01", "latency_p90_ms = 0.0001"))
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    dead = f"json://127.0.0.1:{hook_server.free_port()}/{SECRET}"
    result = run_cli("bench", "kws@1", "--profile", "tight", "--json",
                     "--notify", hook.url("json", "b"), "--notify", dead)
    assert result.exit_code == 0, result.err  # bench judges runs; the budget is for check
    assert json.loads(result.out)[0]["status"] == "ok"
    warnings = [line for line in result.err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1, result.err
    warning = warnings[0]
    assert SECRET not in warning
    [request] = hook.requests
    payload = request.json()
    assert payload["title"] == "devtrack bench: 1 budget breach(es) for kws@1"
    assert "budget: kws@1 on tight: p90_ms = " in payload["message"]
    assert "breaks budget latency_p90_ms ≤ 0.0001" in payload["message"]


def test_targets_from_several_places_merge_per_url() -> None:
    from devtrack.core.profile import validate_profile
    from devtrack.notify import Plan, Target, targets_with_profiles

    url = "json://hooks.example.com/x"
    profile = validate_profile({"name": "p", "alerts": {"urls": [url, "json://h.example/y"],
                                                        "on": ["deploy"], "timeout_s": 2}},
                               "p.toml")
    base = Plan(None, (Target(url, ("regression",), "--notify"),))
    merged = {t.url: t for t in targets_with_profiles(base, [profile])}
    assert merged[url].on == ("regression", "deploy")
    assert merged[url].source == "--notify, profile p" and merged[url].timeout_s == 2
    assert merged["json://h.example/y"].on == ("deploy",)
