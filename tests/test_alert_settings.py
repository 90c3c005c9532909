"""The [alerts] table, secret masking and message composition: pure, tested with plain data."""

from __future__ import annotations

import pytest

from devtrack.core.alert_messages import (
    check_command,
    check_message,
    deployment_message,
)
from devtrack.core.alerts import (
    DEFAULT_ON,
    AlertSettings,
    mask_secrets,
    mask_url,
    url_problem,
    validate_alerts,
)
from devtrack.core.profile import validate_profile
from devtrack.errors import ProfileError, UsageError


def test_a_valid_table_keeps_its_urls_and_events() -> None:
    settings = validate_alerts({"urls": ["json://h.example/x", "json://h.example/x"],
                                "on": ["regression", "deploy"], "timeout_s": 2}, "cfg")
    assert settings == AlertSettings(("json://h.example/x",), ("regression", "deploy"), 2.0)
    assert validate_alerts({}, "cfg").on == DEFAULT_ON


@pytest.mark.parametrize(("table", "needle"), [
    ({"on": ["regresion"]}, "cfg: alerts.on[0]: unknown value 'regresion'"),
    ({"on": "all"}, "cfg: alerts.on: expected a non-empty array"),
    ({"on": []}, "cfg: alerts.on: expected a non-empty array"),
    ({"urls": "json://x/y"}, "cfg: alerts.urls: expected an array"),
    ({"urls": ["hooks.slack.com/abc"]}, "cfg: alerts.urls[0]: not an Apprise URL"),
    ({"urls": ["json://"]}, "cfg: alerts.urls[0]: json:// names no target"),
    ({"urls": ["json://a b/c"]}, "cfg: alerts.urls[0]: not a URL"),
    ({"urls": [3]}, "cfg: alerts.urls[0]: expected a URL string"),
    ({"timeout_s": 0}, "cfg: alerts.timeout_s: expected seconds"),
    ({"timeout_s": 600}, "cfg: alerts.timeout_s: expected seconds"),
    ({"url": []}, "cfg: alerts.url: unknown key"),
])
def test_a_bad_table_is_one_line_naming_the_key(table: dict, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_alerts(table, "cfg")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_malformed_url_error_does_not_echo_its_secret() -> None:
    problem = url_problem("hooks.slack.com/services/T000/B000/SECRETSECRET")
    assert problem is not None and "SECRETSECRET" not in problem


@pytest.mark.parametrize(("url", "masked", "secrets"), [
    ("json://127.0.0.1:8080/hook", "json://127.0.0.1:8080/hook", []),
    ("json://user:pa55word@hooks.example.com/ci/alerts?format=text&token=abc123",
     "json://****:****@hooks.example.com/ci/****?format=text&token=****",
     ["pa55word", "abc123", "user"]),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ml-releases",
     "slack://T1****/A1****/TI****/", ["T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ",
                                    "ml-releases"]),
    ("ntfy://ntfy.sh/teamsecrettopic", "ntfy://ntfy.sh/te****", ["teamsecrettopic"]),
    ("ntfy://teamsecrettopic", "ntfy://te****", ["teamsecrettopic"]),
    ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
     "discord://41****/JH****", ["4174216298", "JHMHI8qBe7bk2ZwO5U711o3dV_js"]),
    ("mailto://alerts:hunter2xyz@gmail.com?to=team@example.com",
     "mailto://****:****@gmail.com?to=****", ["hunter2xyz", "team@example.com"]),
])
def test_masking_hides_every_secret_and_keeps_the_host(url: str, masked: str,
                                                       secrets: list[str]) -> None:
    assert mask_url(url) == masked
    for secret in secrets:
        assert secret not in mask_url(url)
        assert secret not in mask_secrets(f"failed to reach {url} ({secrets[0]})", [url])


def test_profile_alerts_are_policy_outside_the_snapshot_and_hash() -> None:
    base = {"name": "ci", "budgets": {"latency_p90_ms": 5.0}}
    url = "json://hooks.example.com/abc123secret"
    plain = validate_profile(base, "ci.toml")
    alerted = validate_profile({**base, "alerts": {"urls": [url], "on": ["all"]}}, "ci.toml")
    assert alerted.alerts.urls == (url,) and alerted.alerts.on == ("all",)
    assert alerted.hash == plain.hash
    assert alerted.conditions_hash == plain.conditions_hash  # a run's identity: untouched
    assert alerted.to_dict() == plain.to_dict()
    assert "abc123secret" not in repr(alerted.to_dict())


def test_a_profile_with_a_bad_alerts_table_names_the_file_and_key() -> None:
    with pytest.raises(ProfileError, match=r"^ci.toml: alerts.on\[1\]: unknown value 'deploys'"):
        validate_profile({"name": "ci", "alerts": {"on": ["budget", "deploys"]}}, "ci.toml")


def _report(passed: bool) -> dict:
    checks = [{"name": "latency_p90_ms", "status": "pass",
               "message": "p90_ms = 1.2 within budget latency_p90_ms ≤ 5"}]
    latency = None
    if not passed:
        checks += [
            {"name": "max_latency_regression_pct", "status": "fail",
             "message": "p50 latency +98.0% (ratio 1.98, 95% CI 1.90–2.05) vs mm@1.1 "
                        "exceeds max_latency_regression_pct 5"},
            {"name": "peak_memory_mb", "status": "fail",
             "message": "peak_rss_mb = 300 breaks budget peak_memory_mb ≤ 200"},
            {"name": "run", "status": "fail",
             "message": "the latest run on tiny failed: timed out after 60 s"}]
        latency = {"a_ms": 1.0, "b_ms": 1.98, "ratio": 1.98, "ci_low": 1.9, "ci_high": 2.05,
                   "pct": 98.0,
                   "verdict": "slower", "threshold_pct": 5.0, "method": "interleaved"}
    return {"candidate": "mm@2.0", "passed": passed, "rerun": True, "notes": [],
            "profiles": [{"profile": "tiny", "baseline": "mm@1.1",
                          "baseline_source": "deployed", "checks": checks,
                          "latency": latency, "notes": [], "check_id": 7}]}


def test_a_failed_check_message_says_what_changed_and_how_to_reproduce() -> None:
    reproduce = check_command("mm@2.0", ["tiny"])
    message = check_message(_report(False), reproduce, {"tiny": "mm@1.1"})
    assert message.events == ("regression", "budget", "failed-run")
    assert message.level == "failure"
    assert message.title == ("devtrack check FAILED: mm@2.0 on tiny "
                             "(regression +98.0%, budget, failed-run)")
    for needle in ("ratio 1.98, 95% CI 1.90–2.05", "peak_rss_mb = 300 breaks budget",
                   "timed out after 60 s", "deployed on tiny: mm@1.1",
                   "baseline mm@1.1, deployed",
                   "Reproduce: devtrack check mm@2.0 --profile tiny --bench"):
        assert needle in message.body
    assert (message.model, message.version) == ("mm", "2.0")


def test_a_passing_check_reports_nothing_significant() -> None:
    message = check_message(_report(True), "devtrack check mm@2.0", {"tiny": None})
    assert message.events == ()
    assert AlertSettings().wants(message.events) is False
    assert AlertSettings(on=("all",)).wants(message.events) is True
    assert "deployed on tiny: nothing" in message.body


def test_a_deployment_message_says_who_what_where_and_why() -> None:
    message = deployment_message({
        "id": 3, "model": "mm", "version": "1.1", "profile": "phone", "kind": "rollback",
        "deployed_by": "alice", "reason": "crash reports on 2.0", "replaced": "2.0",
        "forced": False, "check_id": None, "deployed_at": "2026-01-02T03:04:05Z"})
    assert message.events == ("rollback",) and message.level == "warning"
    assert message.title == "devtrack rollback: mm@1.1 is live on phone"
    for needle in ("who: alice", "what: mm@1.1 (replaces mm@2.0)", "where: phone",
                   "why: crash reports on 2.0"):
        assert needle in message.body


def test_a_profile_not_measured_is_reported_with_the_command_that_measures_it() -> None:
    report = _report(True)
    profile = report["profiles"][0]
    profile["status"] = "not_measured"
    profile["measure_with"] = "devtrack bench mm@2.0 --profile tiny"
    profile["checks"] = [{"name": "latency_p90_ms", "status": "not_measured",
                          "message": "p90_ms not measured on tiny under its conditions"}]
    message = check_message(report, "devtrack check mm@2.0 --profile tiny --bench", {})
    assert message.events == ("failed-run",) and message.level == "failure"
    assert "tiny: NOT MEASURED (baseline mm@1.1, deployed)" in message.body
    assert "- failed-run: latency_p90_ms (not measured): p90_ms not measured" in message.body
    assert "measure with: devtrack bench mm@2.0 --profile tiny" in message.body
