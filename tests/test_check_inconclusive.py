"""check --inconclusive: what a side-by-side latency verdict too noisy to decide does."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from devtrack.core.significance import paired_ratio_summary
from devtrack.gate import (
    CheckReport,
    ProfileCheck,
    is_inconclusive,
    latency_item,
)
from devtrack.metric_changes import LatencyChange, paired_latency
from devtrack.pairing import PairedResult
from devtrack.workspace import open_workspace
from tests.conftest import snapshot_workspace
from tests.test_cli_errors import assert_clean_error
from tests.test_comparison import review_copy

# Per-repeat ratios candidate/baseline of an interleaved worker, as a quiet and a noisy
# machine leave them (12 repeats).
QUIET_SAME = [0.99, 1.00, 1.01, 0.995, 1.005, 1.0, 0.99, 1.01, 1.0, 0.998, 1.002, 1.0]
NOISY_SAME = [0.86, 1.14, 0.92, 1.10, 0.95, 1.07, 0.88, 1.12, 1.0, 0.97, 1.04, 0.91]
NOISY_FASTER = [0.40, 0.62, 0.45, 0.70, 0.50, 0.66, 0.42, 0.68, 0.55, 0.48, 0.60, 0.52]
SLOWER = [1.9, 2.1, 2.0, 1.95, 2.05, 2.0, 1.98, 2.02, 2.0, 1.97, 2.03, 2.0]
# About 4% slower, under the 5% limit, but its CI reaches above 1.05: not ruled out.
NEAR_LIMIT = [1.03, 1.05, 1.04, 1.06, 1.035, 1.045, 1.04, 1.055, 1.03, 1.05, 1.04, 1.06]


def paired(ratios: list[float], threshold_pct: float = 5.0) -> LatencyChange:
    """The verdict ``check`` reaches on an interleaved worker that measured ``ratios``."""
    ratio, low, high = paired_ratio_summary(ratios)
    result = PairedResult("ok", None, ratio, low, high, repeat_ratios=ratios, a_ms=1.0,
                          b_ms=ratio, repeats=len(ratios))
    return paired_latency(result, threshold_pct)


def stored(ratio: float, low: float, high: float) -> LatencyChange:
    return LatencyChange("stored", ratio, low, high, 0.5, 5.0, "unchanged", 1.0, ratio, 200)


def test_a_noisy_unchanged_side_by_side_verdict_fails_under_fail_with_its_figures() -> None:
    latency = paired(NOISY_SAME)
    assert latency.verdict == "unchanged" and not latency.resolved
    item = latency_item(latency, "mm@1.0", "fail")
    assert item.failed and item.name == "max_latency_regression_pct"
    assert item.value == pytest.approx(latency.ratio) and item.limit == 5.0
    assert "\n" not in item.message
    assert f"95% CI {latency.ci_low:.3f}–{latency.ci_high:.3f}" in item.message
    assert f"ratio {latency.ratio:.2f}" in item.message
    for needle in ("vs mm@1.0 over 12 repeats", "inconclusive", "not ruled out",
                   "reaches above 1.050", "--repeats 24", "quieter machine",
                   "--inconclusive pass"):
        assert needle in item.message, item.message


def test_the_same_noisy_verdict_passes_with_a_note_under_the_default_pass() -> None:
    item = latency_item(paired(NOISY_SAME), "mm@1.0")
    assert item.status == "pass"
    assert ": unchanged (limit max_latency_regression_pct 5); inconclusive: a regression " \
           "beyond 5% is not ruled out" in item.message


@pytest.mark.parametrize("policy", ["pass", "fail"])
def test_a_resolved_unchanged_verdict_passes_under_either_policy(policy: str) -> None:
    latency = paired(QUIET_SAME)
    assert latency.resolved and not is_inconclusive(latency)
    item = latency_item(latency, "mm@1.0", policy)
    assert item.status == "pass" and "inconclusive" not in item.message


@pytest.mark.parametrize("policy", ["pass", "fail"])
def test_slower_fails_as_a_regression_not_as_inconclusive(policy: str) -> None:
    item = latency_item(paired(SLOWER), "mm@1.0", policy)
    assert item.failed and "exceeds max_latency_regression_pct 5" in item.message
    assert "inconclusive" not in item.message


def test_a_faster_verdict_with_a_wide_ci_is_decided_it_cannot_be_a_regression() -> None:
    latency = paired(NOISY_FASTER)
    assert latency.verdict == "faster" and not latency.resolved
    assert not is_inconclusive(latency)
    assert latency_item(latency, "mm@1.0", "fail").status == "pass"


def test_a_narrow_ci_just_under_the_limit_is_inconclusive_a_regression_is_not_ruled_out(
) -> None:
    latency = paired(NEAR_LIMIT)
    assert latency.verdict == "unchanged" and latency.resolved  # narrow, yet ...
    assert latency.ci_high > 1.05 and is_inconclusive(latency)  # ... it reaches the limit
    assert latency_item(latency, "mm@1.0", "fail").failed
    assert latency_item(latency, "mm@1.0", "pass").status == "pass"


def test_the_threshold_decides_what_is_too_wide() -> None:
    assert is_inconclusive(paired(NOISY_SAME, threshold_pct=5.0))
    assert not is_inconclusive(paired(NOISY_SAME, threshold_pct=20.0))


def test_a_stored_indicative_verdict_is_never_failed_for_noise() -> None:
    latency = stored(1.0, 0.85, 1.15)
    assert not latency.resolved
    assert latency_item(latency, "mm@1.0", "fail").status == "pass"


def test_the_failure_message_reaches_junit_and_markdown_and_the_policy_the_json() -> None:
    from devtrack.reports import check_junit, check_markdown

    item = latency_item(paired(NOISY_SAME), "mm@1.0", "fail")
    profile = ProfileCheck("tiny", "h" * 64, items=[item], inconclusive_policy="fail")
    report = CheckReport("mm@1.1", [profile], True, inconclusive_policy="fail")
    assert not report.passed
    root = ET.fromstring(check_junit(report).split("\n", 1)[1])
    failure = next(root.iter("failure"))
    assert failure.get("message") == item.message
    assert "| tiny | `max_latency_regression_pct` | ❌ fail |" in check_markdown(report)
    data = report.to_dict()
    assert data["inconclusive_policy"] == "fail"
    assert data["profiles"][0]["inconclusive_policy"] == "fail"


# --- through the CLI, on real models and a real runtime -----------------------------------

@pytest.fixture
def review_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of mm@1.0, mm@1.1 (same bytes) and mm@2.0 (2x slower), measured on tiny."""
    return review_copy(tmp_path_factory, tmp_path / "ws", monkeypatch)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--inconclusive", "bogus"), ("--inconclusive", "bogus", "'pass', 'fail'")),
        (("--inconclusive", "fail", "--no-rerun"),
         ("--inconclusive fail", "--no-rerun", "indicative")),
        (("--repeats", "5"), ("repeats must be an even number from 4 to 200", "got 5")),
        (("--repeats", "2"), ("--repeats", "2 is not in the range 4<=x<=200")),
        (("--repeats", "1000000"), ("--repeats", "not in the range")),
        (("--repeats", "x"), ("'x' is not a valid integer",)),
        (("--repeats", "8", "--no-rerun"), ("--repeats", "--no-rerun")),
    ],
)
def test_a_bad_inconclusive_option_is_one_line_exit_2_and_writes_nothing(
    review_ws: Path, run_cli, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    before = snapshot_workspace(review_ws)
    result = run_cli("check", "mm@1.1", "--baseline", "mm@1.0", *args)
    assert_clean_error(result, *needles)
    assert snapshot_workspace(review_ws) == before


def test_same_bytes_pass_under_inconclusive_fail_and_the_policy_is_stored(
    review_ws: Path, run_cli
) -> None:
    result = run_cli("check", "mm@1.1", "--baseline", "mm@1.0", "--profile", "tiny",
                     "--inconclusive", "fail", "--json")
    data = json.loads(result.out)
    latency = data["profiles"][0]["latency"]
    assert result.exit_code == 0, (latency, data["profiles"][0]["checks"])
    assert latency["method"] == "interleaved" and latency["verdict"] == "unchanged"
    assert latency["resolved"] is True
    assert data["inconclusive_policy"] == "fail"
    with open_workspace(review_ws) as ws:
        row = ws.store.one("SELECT passed, report FROM checks")
        assert row is not None and row["passed"] == 1
        assert json.loads(row["report"])["inconclusive_policy"] == "fail"
        event = ws.store.events(kind="check")[0]
        assert json.loads(event["payload"])["inconclusive_policy"] == "fail"
        assert ws.store.verify_events() is None


def test_repeats_sets_the_side_by_side_measurement_of_check_and_compare(
    review_ws: Path, run_cli
) -> None:
    checked = run_cli("check", "mm@1.1", "--baseline", "mm@1.0", "--profile", "tiny",
                      "--repeats", "4", "--json")
    assert checked.exit_code == 0, checked.err
    assert json.loads(checked.out)["profiles"][0]["latency"]["n"] == 4
    compared = run_cli("compare", "mm@1.0", "mm@1.1", "--profile", "tiny", "--rerun",
                       "--repeats", "4", "--json")
    assert compared.exit_code == 0, compared.err
    assert json.loads(compared.out)["profiles"][0]["latency"]["n"] == 4
    assert_clean_error(run_cli("compare", "mm@1.0", "mm@1.1", "--repeats", "4"), "add --rerun")


def test_a_decided_verdict_says_nothing_about_noise_and_an_undecided_one_says_why() -> None:
    faster = latency_item(paired(NOISY_FASTER), "mm@1.0", "pass")
    assert faster.status == "pass" and "inconclusive" not in faster.message
    near = latency_item(paired(NEAR_LIMIT), "mm@1.0", "pass")
    assert near.status == "pass" and "not ruled out" in near.message


def test_the_repeats_advice_never_exceeds_what_the_cli_accepts() -> None:
    from dataclasses import replace

    latency = replace(paired(NOISY_SAME), n=400)
    message = latency_item(latency, "mm@1.0", "fail").message
    assert "--repeats" not in message and "quieter machine" in message
