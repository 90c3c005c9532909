"""devtrack.overview: the queries behind the app, usable without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtrack.errors import NotFoundError
from devtrack.overview import (
    audit_events,
    compare_baseline,
    default_profile,
    event_kinds,
    list_model_overview,
    release_detail,
    release_overview,
)
from devtrack.workspace import Workspace, open_workspace

pytestmark = pytest.mark.both_backends


@pytest.fixture
def ws(seeded: Path):  # type: ignore[no-untyped-def]
    with open_workspace(seeded) as workspace:
        yield workspace


def test_models_with_counts_and_live_deployments(ws: Workspace) -> None:
    models = {m.name: m for m in list_model_overview(ws)}
    hand = models["hand-landmark"]
    assert (hand.releases, hand.candidates, hand.approved, hand.rejected, hand.yanked) == (
        5, 2, 2, 1, 0)
    assert hand.latest == "1.4.0" and hand.live_deployments == 2
    assert models["kws"].live_deployments == 1


def test_release_rows_carry_figures_badges_budgets_and_deltas(ws: Workspace) -> None:
    table = release_overview(ws, "hand-landmark", "big-core-1t")
    rows = {r.version: r for r in table.rows}
    assert [r.version for r in table.rows] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    assert rows["1.1.0"].deployed_on == ("big-core-1t", "ci-host")
    assert rows["1.1.0"].quantization == "int8 dynamic"
    assert rows["1.1.0"].accuracy == pytest.approx(0.947)
    assert rows["1.1.0"].p50_ms == pytest.approx(1.10, rel=0.02)
    assert rows["1.1.0"].budget == "pass" and rows["1.1.0"].measured
    assert not rows["1.1.0"].newer_runs and rows["1.1.0"].conditions_note() is None
    assert rows["1.1.0"].p50_change_pct == pytest.approx(-27, abs=2)
    assert rows["1.3.0"].regressed_metrics == ("p50_ms",)
    assert rows["1.3.0"].baseline_version == "1.2.0"
    assert "p50 +5" in rows["1.3.0"].regressions[0]
    assert rows["1.2.0"].regressed_metrics == ("accuracy",)
    assert rows["1.4.0"].run_status is None and rows["1.4.0"].budget == "no run"
    on_ci = {r.version: r for r in release_overview(ws, "hand-landmark", "ci-host").rows}
    assert on_ci["1.4.0"].run_status == "failed" and "SIGSEGV" in on_ci["1.4.0"].run_error


def test_a_budget_breach_fails_the_row(ws: Workspace) -> None:
    (ws.root / "device_profiles" / "ci-host.toml").write_text(
        'name = "ci-host"\n[execution]\nthreads = 2\n[measurement]\nmin_runs = 20\n'
        "[budgets]\nlatency_p90_ms = 0.72\n", encoding="utf-8")
    rows = {r.version: r for r in release_overview(ws, "hand-landmark", "ci-host").rows}
    assert rows["1.0.0"].budget == "fail"
    assert "breaks budget latency_p90_ms" in rows["1.0.0"].budget_results[0].message()
    # budgets and the stopping rule are policy: the runs still count, judged by the new budget
    assert rows["1.0.0"].measured and rows["1.0.0"].conditions_note() is None


def test_runs_under_other_conditions_do_not_count(ws: Workspace) -> None:
    ws.store.execute("UPDATE runs SET conditions_hash = 'old' WHERE release_id = "
                     "(SELECT id FROM releases WHERE version = '1.2.0' AND model_id = "
                     "(SELECT id FROM models WHERE name = 'hand-landmark'))")
    rows = {r.version: r for r in release_overview(ws, "hand-landmark", "big-core-1t").rows}
    assert not rows["1.2.0"].measured and rows["1.2.0"].p50_ms is None
    assert rows["1.2.0"].other_runs == 1
    assert "1 ok run under other conditions does not count" in str(
        rows["1.2.0"].conditions_note())
    # as in ``devtrack trend``: 1.3.0 is compared with the release before it that counts
    assert rows["1.3.0"].baseline_version == "1.1.0" and rows["1.3.0"].regressed


def test_the_table_takes_a_fixed_number_of_queries(ws: Workspace,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    statements: list[str] = []
    plain_query, plain_iterate = ws.store.query, ws.store.iterate

    def query(sql: str, params: Any = ()) -> list[dict[str, Any]]:
        statements.append(sql)
        return plain_query(sql, params)

    def iterate(sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        statements.append(sql)
        return plain_iterate(sql, params)

    monkeypatch.setattr(ws.store, "query", query)  # what every read of either backend asks
    monkeypatch.setattr(ws.store, "iterate", iterate)
    release_overview(ws, "hand-landmark", "big-core-1t")
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) <= 5, selects


def test_default_profile_is_where_the_model_was_measured_most(ws: Workspace) -> None:
    names = ["big-core-1t", "ci-host", "iot-256mb", "phone-4t"]
    assert default_profile(ws, "hand-landmark", names) == "ci-host"
    assert default_profile(ws, "kws", names) == "ci-host"


def test_detail_has_lineage_profiles_deployments_and_events(ws: Workspace) -> None:
    detail = release_detail(ws, "hand-landmark@1.3.0")
    assert detail.lineage == ["1.1.0", "1.0.0"] and detail.children == ["1.4.0"]
    assert [p.profile for p in detail.profiles] == ["big-core-1t", "ci-host"]
    big = detail.profiles[0]
    assert big.counted is not None and big.evaluation["accuracy"] == pytest.approx(0.956)
    assert [e["kind"] for e in detail.events] == ["register", "bench", "bench"]
    assert release_detail(ws, "hand-landmark@1.1.0").profiles[0].deployed
    with pytest.raises(NotFoundError):
        release_detail(ws, "hand-landmark@9.9")


def test_audit_events_filter_and_kinds(ws: Workspace) -> None:
    assert [e["id"] for e in audit_events(ws, limit=2)] == [23, 22]
    assert {e["kind"] for e in audit_events(ws, model="kws", kind="deploy")} == {"deploy"}
    assert event_kinds(ws) == ["bench", "deploy", "promote", "register"]


def test_compare_baseline_is_the_parent_else_the_release_before(ws: Workspace) -> None:
    assert compare_baseline(ws, "hand-landmark", "1.3.0") == "1.1.0"
    assert compare_baseline(ws, "hand-landmark", "1.0.0") is None


def test_the_info_line_says_when_the_profile_cannot_run_the_release(ws: Workspace) -> None:
    from dataclasses import replace

    from tui_seed import plain

    from devtrack.tui.screens.releases import row_info

    row = replace(release_overview(ws, "hand-landmark", "ci-host").rows[0], run_status=None)
    assert "press b to benchmark it" in plain(row_info(row, "ci-host", ("onnx", "tflite")))
    text = plain(row_info(row, "mcu", ("tflite",)))
    assert "mcu runs tflite models only" in text and "press b" not in text
