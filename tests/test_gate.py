"""check: budgets and regression limits per profile, exit codes, JUnit and Markdown reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from devtrack.workspace import open_workspace
from tests.conftest import WorkspaceFactory, snapshot_workspace
from tests.test_cli_errors import assert_clean_error
from tests.test_comparison import LABELS, add_evaluations, predictions, review_copy

TIGHT_PROFILE = """
name = "tight"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 3
min_runs = 20
min_time_s = 0.2
max_time_s = 0.5
target_rel_ci = 0.05
[budgets]
latency_p90_ms = 0.01
model_size_mb = 50.0
"""


@pytest.fixture
def review_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch, workspaces: WorkspaceFactory) -> Path:
    """A copy of mm@1.0, mm@1.1 (same bytes) and mm@2.0 (2x slower), measured on tiny."""
    return review_copy(tmp_path_factory, tmp_path / "ws", monkeypatch, workspaces)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {f"{case.get('classname')}:{case.get('name')}": case for case in root.iter("testcase")}


def deploy(ws_root: Path, version: str, profile: str) -> None:
    """An open deployment row, as the lifecycle work writes it."""
    with open_workspace(ws_root) as ws, ws.store.transaction():
        release = ws.store.one("SELECT r.id, r.model_id FROM releases r JOIN models m ON "
                               "m.id = r.model_id WHERE m.name = 'mm' AND r.version = ?",
                               (version,))
        ws.store.insert("deployments", {
            "model_id": release["model_id"], "release_id": release["id"], "profile": profile,
            "kind": "deploy", "deployed_at": "2024-01-01T00:00:00Z", "deployed_by": "tester",
            "reason": "test"})


@pytest.mark.both_backends
def test_same_bytes_pass_and_the_check_is_stored(review_ws: Path, run_cli,
                                                 tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli("check", "mm@1.1", "--junit", junit)
    assert result.exit_code == 0, result.out + result.err
    assert "PASSED" in result.out
    assert "top contributors" not in result.out and "profiling" not in result.err
    cases = junit_cases(junit)
    assert set(cases) == {"devtrack.check.tiny:latency_p90_ms",
                          "devtrack.check.tiny:model_size_mb",
                          "devtrack.check.tiny:max_latency_regression_pct",
                          "devtrack.check.tiny:max_accuracy_drop"}
    assert all(case.find("failure") is None for case in cases.values())
    assert cases["devtrack.check.tiny:max_accuracy_drop"].find("skipped") is not None
    with open_workspace(review_ws) as ws:
        row = ws.store.one("SELECT * FROM checks")
        assert row is not None and row["passed"] == 1 and row["profile"] == "tiny"
        report = json.loads(row["report"])
        assert report["baseline"] == "mm@1.0" and report["baseline_source"] == "parent"
        assert report["latency"]["verdict"] == "unchanged"
        event = ws.store.events(kind="check")[0]
        assert json.loads(event["payload"])["check"] == row["id"]
        assert ws.store.one("SELECT COUNT(*) AS n FROM comparisons")["n"] == 1
        assert ws.store.verify_events() is None


@pytest.mark.both_backends
def test_twice_as_slow_fails_with_junit_naming_the_metric(review_ws: Path, run_cli,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit, markdown = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = run_cli("check", "mm@2.0", "--junit", junit, "--markdown", markdown)
    assert result.exit_code == 1, result.out + result.err
    assert "FAILED" in result.out and "max_latency_regression_pct" in result.out
    failure = junit_cases(junit)["devtrack.check.tiny:max_latency_regression_pct"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert message.startswith("p50 latency +") and "95% CI" in message
    assert "exceeds max_latency_regression_pct 5" in message
    # the regression's top per-operator contributors: layers mm20.. were added in 2.0
    assert "; top contributors: 20 added MatMul nodes mm20, mm21, mm22, …: +" in message, message
    assert "top contributors: 20 added MatMul" in " ".join(result.out.split())
    assert "explain: +" in " ".join(result.out.split())
    text = markdown.read_text()
    assert "| tiny | `max_latency_regression_pct` | ❌ fail |" in text
    assert "top contributors: 20 added MatMul nodes mm20" in text
    assert summary.read_text() == "earlier step\n" + text
    with open_workspace(review_ws) as ws:
        assert ws.store.one("SELECT passed FROM checks")["passed"] == 0


@pytest.mark.both_backends
def test_budget_breach_fails_after_bench_measures_what_is_missing(review_ws: Path, run_cli,
                                                                  tmp_path: Path) -> None:
    (review_ws / "device_profiles" / "tight.toml").write_text(TIGHT_PROFILE)
    missing = run_cli("check", "mm@1.0", "--profile", "tight", "--json")
    assert missing.exit_code == 1
    items = {i["name"]: i for i in json.loads(missing.out)["profiles"][0]["checks"]}
    # not measured is its own status, with the command that measures it; still exit 1
    assert items["latency_p90_ms"]["status"] == "not_measured"
    assert "devtrack bench mm@1.0 --profile tight" in items["latency_p90_ms"]["message"]
    assert items["model_size_mb"]["status"] == "pass"
    assert json.loads(missing.out)["status"] == "not_measured"

    junit = tmp_path / "junit.xml"
    result = run_cli("check", "mm@1.0", "--profile", "tight", "--bench", "--junit", junit)
    assert result.exit_code == 1, result.out + result.err
    failure = junit_cases(junit)["devtrack.check.tight:latency_p90_ms"].find("failure")
    assert failure is not None and "breaks budget latency_p90_ms ≤ 0.01" in (failure.text or "")
    with open_workspace(review_ws) as ws:
        runs = ws.store.query("SELECT status FROM runs WHERE profile = 'tight'")
    assert [r["status"] for r in runs] == ["ok"]


@pytest.mark.both_backends
def test_baseline_defaults_to_the_deployed_release(review_ws: Path, run_cli) -> None:
    deploy(review_ws, "2.0", "tiny")
    result = run_cli("check", "mm@1.1", "--json")
    assert result.exit_code == 0, result.err
    profile = json.loads(result.out)["profiles"][0]
    assert (profile["baseline"], profile["baseline_source"]) == ("mm@2.0", "deployed")
    assert profile["latency"]["verdict"] == "faster"


@pytest.mark.both_backends
def test_no_rerun_judges_stored_runs_and_says_so(review_ws: Path, run_cli) -> None:
    result = run_cli("check", "mm@2.0", "--baseline", "mm@1.0", "--no-rerun", "--json")
    assert result.exit_code == 1
    profile = json.loads(result.out)["profiles"][0]
    assert profile["latency"]["method"] == "stored"
    assert any("indicative only" in note for note in profile["notes"])
    # per-op data exists (the runs were benched with --op-profile): op types, not nodes
    assert profile["contributors"] and profile["contributors"][0].startswith("MatMul +")
    with open_workspace(review_ws) as ws:
        assert ws.store.one("SELECT COUNT(*) AS n FROM comparisons")["n"] == 0


@pytest.mark.both_backends
def test_without_a_baseline_regression_checks_are_skipped(review_ws: Path, run_cli) -> None:
    result = run_cli("check", "mm@1.0", "--json")
    assert result.exit_code == 0, result.err
    items = {i["name"]: i for i in json.loads(result.out)["profiles"][0]["checks"]}
    assert items["max_latency_regression_pct"]["status"] == "skipped"
    assert "no baseline" in items["max_latency_regression_pct"]["message"]


@pytest.mark.both_backends
def test_accuracy_drop_beyond_the_limit_fails(review_ws: Path, run_cli) -> None:
    add_evaluations(review_ws, {"1.1": predictions(20), "2.0": predictions(40)}, LABELS)
    result = run_cli("check", "mm@2.0", "--no-rerun", "--json")
    assert result.exit_code == 1
    profile = json.loads(result.out)["profiles"][0]
    items = {i["name"]: i for i in profile["checks"]}
    drop = items["max_accuracy_drop"]
    assert drop["status"] == "fail" and drop["value"] == pytest.approx(0.1)
    assert "exceeds max_accuracy_drop 0.01" in drop["message"]
    assert "McNemar" in drop["message"]
    assert profile["accuracy"]["b"] == 0.8


@pytest.mark.both_backends
def test_accuracy_on_different_datasets_fails_and_says_how_to_compare(review_ws: Path,
                                                                      run_cli) -> None:
    add_evaluations(review_ws, {"1.1": predictions(20)}, LABELS)  # the baseline, on digits
    with open_workspace(review_ws) as ws, ws.store.transaction():
        other = ws.store.insert("datasets", {
            "name": "noise", "sha256": "f" * 64, "task": "classification", "samples": 10,
            "arrays": "{}", "has_labels": 1, "created_at": "t", "created_by": "tester"})
        run = ws.store.one("SELECT runs.id FROM runs JOIN releases r ON r.id = "
                           "runs.release_id WHERE r.version = '2.0' AND runs.profile = 'tiny'")
        assert run is not None
        ws.store.insert("evaluations", {
            "run_id": run["id"], "dataset_id": other, "task": "classification",
            "metrics": "{}", "accuracy": 0.1, "created_at": "t"})
    result = run_cli("check", "mm@2.0", "--no-rerun", "--json")
    items = {i["name"]: i for i in json.loads(result.out)["profiles"][0]["checks"]}
    message = items["max_accuracy_drop"]["message"]
    assert items["max_accuracy_drop"]["status"] == "fail"
    assert "different datasets (noise, digits)" in message
    assert "bench mm@2.0 with --eval digits" in message


@pytest.mark.both_backends
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("mm@2.0", "--baseline", "other@1.0"), ("different models",)),
        (("mm@2.0", "--profile", "nope"), ("unknown device profile", "nope")),
        (("mm-2.0",), ("malformed release reference",)),
        (("mm@2.0", "--baseline", "mm@2.0"), ("candidate itself",)),
        (("mm@2.0", "--junit", "no/such/dir/junit.xml"), ("--junit", "does not exist")),
        (("mm@2.0", "--markdown", "missing/summary.md"), ("--markdown", "does not exist")),
        (("other@1.0",), ("nothing to check", "--profile")),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(review_ws: Path, run_cli,
                                                         args: tuple[str, ...],
                                                         needles: tuple[str, ...]) -> None:
    before = snapshot_workspace(review_ws)
    files = sorted(p for p in review_ws.rglob("*") if ".devtrack" not in p.parts)
    assert_clean_error(run_cli("check", *args), *needles)
    assert snapshot_workspace(review_ws) == before
    assert sorted(p for p in review_ws.rglob("*") if ".devtrack" not in p.parts) == files


def test_reports_escape_user_text_in_markdown() -> None:
    from devtrack.gate import CheckItem, CheckReport, ProfileCheck
    from devtrack.reports import check_junit, check_markdown

    item = CheckItem("run", "status", "fail", "crashed: a|b <script> \nnext")
    report = CheckReport("mm@1.0", [ProfileCheck("p", "h" * 64, items=[item])], True)
    text = check_markdown(report)
    assert "crashed: a\\|b &lt;script&gt;  next |" in text
    root = ET.fromstring(check_junit(report).split("\n", 1)[1])
    assert root.get("failures") == "1"


def test_twice_the_work_is_decided_slower_at_the_first_look(review_ws: Path, run_cli) -> None:
    result = run_cli("check", "mm@2.0", "--baseline", "mm@1.0", "--profile", "tiny", "--json")
    assert result.exit_code == 1, result.err
    latency = json.loads(result.out)["profiles"][0]["latency"]
    assert latency["verdict"] == "slower" and latency["ci_low"] > 1.3
    assert latency["n"] <= 6  # decided at the first looks, not measured to the cap of 24
    with open_workspace(review_ws) as ws:
        row = ws.store.one("SELECT details FROM comparisons")
    details = json.loads(row["details"])
    assert details["looks"][-1]["decision"] == "slower"
    assert details["repeats"] == latency["n"] == details["looks"][-1]["repeats"]
    assert details["sequential"] == {"limit": 0.05, "max_repeats": 24, "alpha": 0.05}
    assert details["clock"] == "cpu" and len(details["wall_repeat_ratios"]) == latency["n"]
    notes = json.loads(result.out)["profiles"][0]["notes"]
    assert any("CPU time" in n and "wall-clock ratio" in n for n in notes), notes


def test_same_bytes_are_unchanged_and_never_measured_past_the_cap(review_ws: Path,
                                                                 run_cli) -> None:
    result = run_cli("check", "mm@1.1", "--baseline", "mm@1.0", "--profile", "tiny",
                     "--repeats", "8", "--json")
    assert result.exit_code == 0, result.err
    latency = json.loads(result.out)["profiles"][0]["latency"]
    assert latency["verdict"] == "unchanged" and latency["n"] <= 8
    with open_workspace(review_ws) as ws:
        row = ws.store.one("SELECT details FROM comparisons")
    looks = json.loads(row["details"])["looks"]
    assert [look["repeats"] for look in looks] == [4, 6, 8][:len(looks)]
    assert all(look["decision"] == "continue" for look in looks[:-1])
    assert looks[-1]["decision"] in ("within", "undecided")


def test_a_limit_no_measurement_can_rule_out_is_measured_to_the_cap_then_undecided(
    review_ws: Path, run_cli
) -> None:
    # A 0% limit: an A/A pair can never show its CI wholly under 1.000, so every look
    # measures on; at the cap the verdict stays undecided and --inconclusive fail fails it.
    profile = (review_ws / "device_profiles" / "tiny.toml")
    profile.write_text(profile.read_text().replace("max_latency_regression_pct = 5.0",
                                                   "max_latency_regression_pct = 0.0"))
    # A true A/A pair still shows a CI that excludes 1 now and then (at most 5% of
    # measurements), which decides under a 0% limit: up to three tries.
    for _ in range(3):
        result = run_cli("check", "mm@1.1", "--baseline", "mm@1.0", "--profile", "tiny",
                         "--repeats", "6", "--inconclusive", "fail", "--json")
        data = json.loads(result.out)["profiles"][0]
        latency = data["latency"]
        if latency["verdict"] == "unchanged":
            assert result.exit_code == 1, result.err
            assert latency["n"] == 6
            item = next(i for i in data["checks"] if i["name"] == "max_latency_regression_pct")
            assert "over 6 repeats: inconclusive" in item["message"]
            assert "--repeats 12" in item["message"]
            return
        assert latency["ci_low"] > 1 or latency["ci_high"] < 1, latency
    pytest.fail("three A/A measurements under a 0% limit all decided")


def test_the_wall_clock_decides_when_asked(review_ws: Path, run_cli) -> None:
    result = run_cli("check", "mm@2.0", "--baseline", "mm@1.0", "--profile", "tiny",
                     "--clock", "wall", "--json")
    assert result.exit_code == 1, result.err
    profile = json.loads(result.out)["profiles"][0]
    assert profile["latency"]["verdict"] == "slower"
    assert not any("CPU time" in note for note in profile["notes"]), profile["notes"]
    with open_workspace(review_ws) as ws:
        row = ws.store.one("SELECT details FROM comparisons")
    details = json.loads(row["details"])
    assert details["clock"] == "wall"
    assert details["sequential"]["max_repeats"] == 24  # no --repeats: the default cap


@pytest.mark.parametrize("args", [
    ("check", "mm@1.1", "--baseline", "mm@1.0", "--clock", "wall", "--no-rerun"),
    ("check", "mm@1.1", "--baseline", "mm@1.0", "--clock", "sundial"),
    ("compare", "mm@1.0", "mm@1.1", "--clock", "wall"),
])
def test_clock_needs_the_side_by_side_measurement_and_a_known_clock(
    review_ws: Path, run_cli, args: tuple[str, ...]
) -> None:
    before = snapshot_workspace(review_ws)
    result = run_cli(*args)
    assert result.exit_code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "--clock" in result.err
    assert snapshot_workspace(review_ws) == before
