"""The rollback policy as a pure function: which release it picks and why it passes others over."""

from __future__ import annotations

import pytest

from devtrack.core.budgets import Figures
from devtrack.core.profile import Budgets
from devtrack.core.rollback import (
    EVIDENCE,
    POSITION,
    STATUS,
    ReleaseFacts,
    budget_failure,
    budget_figure,
    propose_rollback,
    refusal_kind,
)

BUDGETS = Budgets(latency_p90_ms=10.0, peak_memory_mb=300.0, model_size_mb=5.0)
GOOD = Figures(p90_ms=8.0, peak_rss_mb=120.0, size_mb=1.0)
SLOW = Figures(p90_ms=12.1, peak_rss_mb=120.0, size_mb=1.0)
NO_RESULTS = "not measured on phone under its current conditions"


def facts(version: str, status: str = "approved", figures: Figures | None = GOOD,
          deployed: bool = False, stale: int = 0) -> ReleaseFacts:
    return ReleaseFacts(version, status, deployed, figures, stale)


def plan_for(releases: list[ReleaseFacts], current: str, to: str | None = None,
             budgets: Budgets = BUDGETS):
    return propose_rollback(releases, current, "phone", budgets, to)


def reasons(plan) -> dict[str, tuple[str, ...]]:
    return {a.version: a.reasons for a in plan.ranked}


def test_issue_scenario_skips_rejected_unmeasured_and_over_budget_releases() -> None:
    releases = [facts("1.0"), facts("1.1"), facts("1.2", figures=SLOW),
                facts("1.3", figures=None), facts("1.4", status="rejected"),
                facts("1.5", status="candidate", deployed=True)]
    plan = plan_for(releases, "1.5")
    assert plan.target == "1.1"
    assert [a.version for a in plan.ranked] == ["1.1", "1.4", "1.3", "1.2", "1.0", "1.5"]
    assert reasons(plan) == {
        "1.1": (),
        "1.4": ("rejected",),
        "1.3": (NO_RESULTS,),
        "1.2": ("fails budget latency_p90_ms (p90 12.1 ms > 10 ms)",),
        "1.0": ("eligible, but older than 1.1",),
        "1.5": ("is the current deployment",),
    }
    assert plan.chosen is not None and plan.chosen.version == "1.1"
    assert plan.refusal is None and refusal_kind(plan) is None


@pytest.mark.parametrize(
    ("earlier", "expected"),
    [
        # the newest earlier release wins when it qualifies
        ([facts("1.0"), facts("1.1")], "1.1"),
        # approved or deployed before: a candidate that was once deployed counts
        ([facts("1.0"), facts("1.1", status="candidate", deployed=True)], "1.1"),
        # a candidate never approved nor deployed does not
        ([facts("1.0"), facts("1.1", status="candidate")], "1.0"),
        # a release deployed before but rejected since is out
        ([facts("1.0"), facts("1.1", status="rejected", deployed=True)], "1.0"),
        ([facts("1.0"), facts("1.1", status="yanked", deployed=True)], "1.0"),
        # results must exist under the profile's current conditions
        ([facts("1.0"), facts("1.1", figures=None, stale=3)], "1.0"),
        # every budget counts: memory and size as well as latency
        ([facts("1.0"), facts("1.1", figures=Figures(8.0, 400.0, 1.0))], "1.0"),
        ([facts("1.0"), facts("1.1", figures=Figures(8.0, 120.0, 6.0))], "1.0"),
        # a figure exactly at its limit passes
        ([facts("1.0"), facts("1.1", figures=Figures(10.0, 300.0, 5.0))], "1.1"),
        # a figure that was not measured is not a pass (as in `devtrack check`)
        ([facts("1.0"), facts("1.1", figures=Figures(8.0, None, 1.0))], "1.0"),
        # nothing qualifies
        ([facts("1.0", status="rejected"), facts("1.1", figures=SLOW)], None),
        ([], None),
    ],
)
def test_target_choice(earlier: list[ReleaseFacts], expected: str | None) -> None:
    releases = [*earlier, facts("2.0", deployed=True)]
    assert plan_for(releases, "2.0").target == expected


@pytest.mark.parametrize(
    ("release", "reason"),
    [
        (facts("1.1", status="rejected"), "rejected"),
        (facts("1.1", status="yanked"), "yanked"),
        (facts("1.1", status="candidate"), "never approved or deployed"),
        (facts("1.1", figures=None), NO_RESULTS),
        (facts("1.1", figures=None, stale=1),
         NO_RESULTS + " (1 ok run under other conditions does not count; bench it again)"),
        (facts("1.1", figures=None, stale=2),
         NO_RESULTS + " (2 ok runs under other conditions do not count; bench it again)"),
        (facts("1.1", figures=SLOW), "fails budget latency_p90_ms (p90 12.1 ms > 10 ms)"),
        (ReleaseFacts("1.1", "approved", run_error="out of memory (cap 64 MB)"),
         "its latest run on phone failed: out of memory (cap 64 MB)"),
        (facts("1.1", figures=Figures(8.0, 312.4, 1.0)),
         "fails budget peak_memory_mb (peak RSS 312 MB > 300)"),
        (facts("1.1", figures=Figures(8.0, 120.0, 7.25)),
         "fails budget model_size_mb (size 7.25 MB > 5)"),
    ],
)
def test_each_reason_is_worded_for_the_user(release: ReleaseFacts, reason: str) -> None:
    plan = plan_for([release, facts("2.0", deployed=True)], "2.0")
    assert plan.target is None
    assert reason in reasons(plan)["1.1"]


def test_all_reasons_are_listed_status_first() -> None:
    plan = plan_for([facts("1.1", status="rejected", figures=SLOW),
                     facts("2.0", deployed=True)], "2.0")
    first = plan.ranked[0]
    assert first.reasons == ("rejected", "fails budget latency_p90_ms (p90 12.1 ms > 10 ms)")
    assert first.blocker == STATUS


def test_accuracy_budget_uses_a_lower_bound() -> None:
    budgets = Budgets(min_accuracy=0.9)
    plan = plan_for([facts("1.0", figures=Figures(accuracy=0.95)),
                     facts("1.1", figures=Figures(accuracy=0.85)),
                     facts("2.0", deployed=True)], "2.0", budgets=budgets)
    assert plan.target == "1.0"
    assert reasons(plan)["1.1"] == ("fails budget min_accuracy (accuracy 0.85 < 0.9)",)


def test_unmeasured_budget_figure_is_named() -> None:
    plan = plan_for([facts("1.0", figures=Figures(p90_ms=1.0)), facts("2.0", deployed=True)],
                    "2.0", budgets=Budgets(latency_p90_ms=10.0, min_accuracy=0.9))
    assert plan.target is None
    assert reasons(plan)["1.0"] == ("fails budget min_accuracy (accuracy not measured)",)


def test_the_chosen_release_keeps_its_budget_figures() -> None:
    plan = plan_for([facts("1.0"), facts("2.0", deployed=True)], "2.0")
    assert [budget_figure(b) for b in plan.ranked[0].budgets] == [
        "p90 8.00 ms ≤ 10 ms", "peak RSS 120 MB ≤ 300", "size 1 MB ≤ 5"]


def test_releases_after_the_current_deployment_are_never_proposed() -> None:
    # 1.2 is live after an earlier rollback; 1.3 and 1.4 are newer and fine, but not "back"
    releases = [facts("1.0"), facts("1.1"), facts("1.2", deployed=True), facts("1.3"),
                facts("1.4", deployed=True)]
    plan = plan_for(releases, "1.2")
    assert plan.target == "1.1"
    assert [a.version for a in plan.ranked] == ["1.1", "1.0", "1.2", "1.4", "1.3"]
    assert reasons(plan)["1.4"] == ("newer than the current deployment",)
    assert reasons(plan)["1.3"] == ("newer than the current deployment",)


def test_the_first_release_has_nothing_to_roll_back_to() -> None:
    plan = plan_for([facts("1.0", deployed=True), facts("1.1")], "1.0")
    assert plan.target is None
    assert "nothing was released before 1.0" in (plan.refusal or "")
    assert refusal_kind(plan) == EVIDENCE


def test_no_candidate_is_a_failed_check_with_the_reasons_kept() -> None:
    plan = plan_for([facts("1.0", status="yanked"), facts("1.1", figures=None),
                     facts("2.0", deployed=True)], "2.0")
    assert plan.target is None
    assert refusal_kind(plan) == EVIDENCE
    assert "no release before 2.0 qualifies on phone" in (plan.refusal or "")
    assert reasons(plan)["1.0"] == ("yanked",)


@pytest.mark.parametrize(
    ("to", "target", "kind", "needle"),
    [
        ("1.0", "1.0", None, None),  # older than the default choice, still fine
        ("1.1", "1.1", None, None),
        ("1.2", None, STATUS, "1.2 cannot be rolled back to on phone: rejected"),
        ("1.3", None, STATUS, "yanked"),
        ("1.4", None, EVIDENCE, "fails budget latency_p90_ms"),
        ("1.5", None, EVIDENCE, NO_RESULTS),
        ("1.6", None, STATUS, "never approved or deployed"),
        ("2.0", None, POSITION, "is the current deployment"),
        ("2.1", None, POSITION, "newer than the current deployment"),
    ],
)
def test_to_is_judged_by_the_same_rules(to: str, target: str | None, kind: str | None,
                                        needle: str | None) -> None:
    releases = [facts("1.0"), facts("1.1"), facts("1.2", status="rejected"),
                facts("1.3", status="yanked"), facts("1.4", figures=SLOW),
                facts("1.5", figures=None), facts("1.6", status="candidate"),
                facts("2.0", deployed=True), facts("2.1")]
    plan = plan_for(releases, "2.0", to=to)
    assert plan.target == target
    assert plan.requested == to
    assert refusal_kind(plan) == kind
    if needle is not None:
        assert needle in (plan.refusal or "")
    else:
        assert plan.ranked[0].version == to and plan.ranked[0].chosen


def test_to_an_older_release_says_why_the_newer_eligible_one_was_passed_over() -> None:
    plan = plan_for([facts("1.0"), facts("1.1"), facts("2.0", deployed=True)], "2.0", to="1.0")
    assert reasons(plan)["1.1"] == ("eligible, but --to chose 1.0",)


def test_every_release_appears_exactly_once() -> None:
    releases = [facts(f"1.{i}", status=s)
                for i, s in enumerate(["approved", "rejected", "candidate", "approved"])]
    releases.append(facts("2.0", deployed=True))
    plan = plan_for(releases, "2.0")
    assert sorted(a.version for a in plan.ranked) == sorted(r.version for r in releases)
    assert sum(a.chosen for a in plan.ranked) == 1


def test_plan_serialises_to_json_ready_dict() -> None:
    plan = plan_for([facts("1.0", figures=SLOW), facts("2.0", deployed=True)], "2.0")
    data = plan.to_dict()
    assert data["target"] is None and data["current"] == "2.0"
    [first, _] = data["ranked"]
    assert first["eligible"] is False and first["blocker"] == EVIDENCE
    assert first["budgets"][0]["status"] == "fail"


def test_unknown_current_or_requested_release_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="current deployment"):
        plan_for([facts("1.0")], "9.9")
    with pytest.raises(ValueError, match="requested release"):
        plan_for([facts("1.0"), facts("2.0")], "2.0", to="9.9")


def test_budget_failure_message_rounds_like_a_human() -> None:
    from devtrack.core.budgets import evaluate_budgets

    [result] = evaluate_budgets(Budgets(latency_p90_ms=10.0), Figures(p90_ms=12.1234))
    assert budget_failure(result) == "fails budget latency_p90_ms (p90 12.1 ms > 10 ms)"


def test_a_release_judged_on_older_runs_than_newer_ones_under_other_conditions_says_so(
        ) -> None:
    from devtrack.core.counting import NEWER_RUNS_NOTE
    from devtrack.core.rollback import ReleaseFacts as Facts

    releases = [Facts("1.0", "approved", False, GOOD, 0, None, 2), facts("1.1")]
    plan = plan_for(releases, "1.1")
    assert plan.target == "1.0"
    assert plan.notes == (f"1.0: {NEWER_RUNS_NOTE}",)
    assert plan.to_dict()["notes"] == [f"1.0: {NEWER_RUNS_NOTE}"]
    assert plan_for([facts("1.0"), facts("1.1")], "1.1").notes == ()
