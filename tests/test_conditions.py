"""Conditions vs policy and the run that counts, end to end on real benches of a tiny model.

A profile's conditions (threads, affinity, runtime options) form a run's identity; its policy
(budgets, the stopping rule, timeout, memory cap) does not. Every view and decision reads the
run that counts: the newest ok run under the profile's current conditions.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from devtrack.core.conditions import CONDITIONS, POLICY, changed_conditions, conditions_hash
from devtrack.core.counting import NEWER_RUNS_NOTE, choose_run
from devtrack.core.profile import Profile, validate_profile
from devtrack.workspace import open_workspace

QUICK = """
name = "quick"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 30
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = 0.2
max_time_s = 0.4
target_rel_ci = 0.05
[budgets]
latency_p90_ms = 1000.0
model_size_mb = 50.0
"""


def _leaves(data: dict, prefix: str = "") -> set[tuple[str, str]]:
    out = set()
    for key, value in data.items():
        if isinstance(value, dict):
            out |= {(key, k) for k in value}
        elif key != "name":
            out.add((prefix, key))
    return out


# --- the split, pure -----------------------------------------------------------------------

def test_every_setting_is_either_a_condition_or_policy_once() -> None:
    settings = _leaves(Profile(name="x").to_dict())
    conditions = {(s, k) for s, k, _ in CONDITIONS}
    policy = {(s, k) for s, k, _ in POLICY}
    assert not conditions & policy
    assert conditions | policy == settings


@pytest.mark.parametrize(("section", "key", "value"), [
    ("measurement", "max_time_s", 5.0), ("measurement", "min_runs", 3),
    ("measurement", "warmup_runs", 0), ("measurement", "target_rel_ci", 0.2),
    ("measurement", "cooldown_s", 1.0), ("budgets", "latency_p90_ms", 1.0),
    ("budgets", "max_latency_regression_pct", 1.0), ("execution", "timeout_s", 100.0),
    ("execution", "memory_limit_mb", 64),
])
def test_policy_edits_keep_the_identity(section: str, key: str, value: object) -> None:
    base = validate_profile({"name": "p"}, "p")
    edited = validate_profile({"name": "p", section: {key: value}}, "p")
    assert edited.hash != base.hash  # the full settings differ ...
    assert edited.conditions_hash == base.conditions_hash  # ... the identity does not


@pytest.mark.parametrize(("section", "key", "value", "change"), [
    ("execution", "threads", 2, "threads 1 → 2"),
    ("execution", "cpu_affinity", [1], "cpu_affinity [] → [1]"),
    ("onnxruntime", "graph_optimization_level", "basic", "graph_optimization_level all → basic"),
    ("onnxruntime", "execution_mode", "parallel", "execution_mode sequential → parallel"),
    ("litert", "xnnpack", False, "xnnpack on → off"),
    ("litert", "api", "compiled_model", "api interpreter → compiled_model"),
])
def test_condition_edits_change_the_identity(section: str, key: str, value: object,
                                             change: str) -> None:
    base = validate_profile({"name": "p"}, "p")
    edited = validate_profile({"name": "p", section: {key: value}}, "p")
    assert edited.conditions_hash != base.conditions_hash
    assert changed_conditions(base.to_dict(), edited.to_dict()) == [change]


def test_an_older_snapshot_without_a_key_takes_the_default_it_ran_with() -> None:
    full = Profile(name="p").to_dict()
    old = json.loads(json.dumps(full))
    del old["litert"]["api"]
    assert conditions_hash(old) == conditions_hash(full)


def test_the_run_that_counts_is_the_newest_ok_one_under_the_conditions() -> None:
    runs = [{"id": 1, "status": "ok", "conditions_hash": "c"},
            {"id": 2, "status": "ok", "conditions_hash": "other"},
            {"id": 3, "status": "aborted", "conditions_hash": "c"},
            {"id": 4, "status": "ok", "conditions_hash": "other"}]
    choice = choose_run(runs, "c")
    assert choice.run is not None and choice.run["id"] == 1
    assert (choice.newer_other, choice.other, choice.total) == (2, 2, 4)
    assert choice.newer_runs_note() == NEWER_RUNS_NOTE and choice.failed is None
    failed = choose_run([*runs, {"id": 5, "status": "failed", "conditions_hash": "c"}], "c")
    assert failed.failed is not None and failed.failed["id"] == 5
    none = choose_run(runs, "new")
    assert none.run is None and none.newer_other == 0
    assert "3 ok runs under other conditions do not count" in str(none.conditions_note())
    assert choose_run(runs, None).run == runs[3]  # a profile no longer defined: newest ok


# --- end to end ----------------------------------------------------------------------------

@pytest.fixture
def quick_ws(in_ws: Path, run_cli, mlp_onnx: Path, mlp_onnx_b: Path) -> Path:
    (in_ws / "device_profiles" / "quick.toml").write_text(QUICK)
    for version, path, parent in (("1.0", mlp_onnx, []), ("1.1", mlp_onnx_b, ["--parent",
                                                                               "1.0"])):
        result = run_cli("register", path, "-m", "m", "-v", version, "--notes", "n", *parent)
        assert result.exit_code == 0, result.err
    return in_ws


def _edit_profile(root: Path, old: str, new: str) -> None:
    path = root / "device_profiles" / "quick.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _bench(run_cli, *args: str) -> dict:
    result = run_cli("bench", *args, "--profile", "quick", "--json")
    assert result.exit_code == 0, result.out + result.err
    return json.loads(result.out)[0]


def _check(run_cli, *args: str, ref: str = "m@1.0") -> tuple[int, dict]:
    result = run_cli("check", ref, "--profile", "quick", "--json", *args)
    assert result.exit_code in (0, 1), result.err
    return result.exit_code, json.loads(result.out)


def test_stopping_rule_flags_keep_the_identity(quick_ws: Path, run_cli) -> None:
    run = _bench(run_cli, "m@1.0", "--max-time", "0.3", "--min-time", "0.1", "--runs", "5")
    code, report = _check(run_cli)
    assert code == 0, report
    assert report["profiles"][0]["run_id"] == run["run_id"]
    assert report["status"] == "pass"
    item = {i["name"]: i for i in report["profiles"][0]["checks"]}["latency_p90_ms"]
    assert item["value"] == pytest.approx(run["p90_ms"])


def test_a_budget_edit_judges_the_same_run_by_the_new_budget(quick_ws: Path, run_cli) -> None:
    run = _bench(run_cli, "m@1.0")
    _edit_profile(quick_ws, "latency_p90_ms = 1000.0", "latency_p90_ms = 2000.0")
    code, report = _check(run_cli)
    assert code == 0 and report["profiles"][0]["run_id"] == run["run_id"]
    _edit_profile(quick_ws, "latency_p90_ms = 2000.0", "latency_p90_ms = 0.00001")
    code, report = _check(run_cli)
    assert code == 1 and report["status"] == "fail"
    assert report["profiles"][0]["run_id"] == run["run_id"]
    item = {i["name"]: i for i in report["profiles"][0]["checks"]}["latency_p90_ms"]
    assert item["status"] == "fail" and "breaks budget latency_p90_ms" in item["message"]
    with open_workspace(quick_ws) as ws:  # judged, not re-measured
        assert ws.store.one("SELECT COUNT(*) AS n FROM runs")["n"] == 1


def test_a_thread_change_separates_runs(quick_ws: Path, run_cli, tmp_path: Path) -> None:
    one = _bench(run_cli, "m@1.0")
    two = _bench(run_cli, "m@1.0", "--threads", "2")  # newer, under other conditions
    code, report = _check(run_cli)
    assert code == 0 and report["profiles"][0]["run_id"] == one["run_id"]
    assert any(NEWER_RUNS_NOTE in note for note in report["profiles"][0]["notes"])
    # the profile now says 2 threads: the --threads 2 run is the one that counts
    _edit_profile(quick_ws, "threads = 1", "threads = 2")
    code, report = _check(run_cli)
    assert code == 0 and report["profiles"][0]["run_id"] == two["run_id"]
    # 3 threads: nothing measured under them; its own status, still exit 1
    _edit_profile(quick_ws, "threads = 2", "threads = 3")
    junit, markdown = tmp_path / "j.xml", tmp_path / "s.md"
    code, report = _check(run_cli, "--junit", str(junit), "--markdown", str(markdown))
    assert code == 1 and report["status"] == "not_measured"
    profile = report["profiles"][0]
    assert profile["status"] == "not_measured" and profile["run_id"] is None
    assert profile["measure_with"] == "devtrack bench m@1.0 --profile quick"
    item = {i["name"]: i for i in profile["checks"]}["latency_p90_ms"]
    assert item["status"] == "not_measured" and item["value"] is None
    assert "2 ok runs under other conditions do not count" in item["message"]
    assert 'type="not_measured"' in junit.read_text() and 'errors="1"' in junit.read_text()
    assert "❔ not measured" in markdown.read_text()
    text = run_cli("check", "m@1.0", "--profile", "quick")
    assert text.exit_code == 1 and "NOT MEASURED" in text.out and "FAILED" not in text.out
    rows = json.loads(run_cli("releases", "m", "--profile", "quick", "--json").out)
    row = next(r for r in rows if r["version"] == "1.0")
    assert row["p50_ms"] is None and row["other_runs"] == 2
    assert "not measured under the profile's current conditions" in row["conditions_note"]
    from devtrack.overview import release_overview
    from devtrack.tui.screens.releases import row_info
    from tests.tui.tui_seed import plain

    with open_workspace(quick_ws) as ws:
        table = {r.version: r for r in release_overview(ws, "m", "quick").rows}
    info = plain(row_info(table["1.0"], "quick", ("onnx",)))
    assert "not measured under the profile's current conditions" in info and "press b" in info
    # --bench measures it under the profile's own conditions, then it passes
    code, report = _check(run_cli, "--bench")
    assert code == 0 and report["profiles"][0]["run_id"] not in (one["run_id"],
                                                                  two["run_id"])


def test_one_figure_everywhere(quick_ws: Path, run_cli) -> None:
    """Both releases measured under the profile, then both again with --threads 2: every
    view shows the first pair's figures and says newer runs used other conditions."""
    counted = {v: _bench(run_cli, f"m@{v}") for v in ("1.0", "1.1")}
    for v in ("1.0", "1.1"):
        _bench(run_cli, f"m@{v}", "--threads", "2")
    p50 = counted["1.1"]["p50_ms"]
    rows = json.loads(run_cli("releases", "m", "--profile", "quick", "--json").out)
    row = next(r for r in rows if r["version"] == "1.1")
    assert row["p50_ms"] == p50 and row["run_id"] == counted["1.1"]["run_id"]
    assert row["newer_runs"] and row["conditions_note"] == NEWER_RUNS_NOTE
    shown = next(m for m in json.loads(run_cli("show", "m@1.1", "--json").out)["measured"]
                 if m["profile"] == "quick")
    assert shown["p50_ms"] == p50 and shown["conditions_note"] == NEWER_RUNS_NOTE
    trend = json.loads(run_cli("trend", "m", "-p", "quick", "--json").out)
    point = next(p for p in trend["points"] if p["version"] == "1.1")
    assert point["value"] == p50 and point["run_id"] == counted["1.1"]["run_id"]
    assert point["note"] == NEWER_RUNS_NOTE
    compared = json.loads(run_cli("compare", "m@1.0", "m@1.1", "-p", "quick", "--json").out)
    pair = compared["profiles"][0]
    assert (pair["run_a"], pair["run_b"]) == (counted["1.0"]["run_id"],
                                              counted["1.1"]["run_id"])
    assert any(NEWER_RUNS_NOTE in n for n in pair["notes"])
    code, report = _check(run_cli, "--no-rerun", ref="m@1.1")
    assert code == 0 and report["profiles"][0]["run_id"] == counted["1.1"]["run_id"]
    assert any(NEWER_RUNS_NOTE in n for n in report["profiles"][0]["notes"])
    from devtrack.overview import release_detail, release_overview

    with open_workspace(quick_ws) as ws:
        table = {r.version: r for r in release_overview(ws, "m", "quick").rows}
        assert table["1.1"].p50_ms == p50
        detail = next(p for p in release_detail(ws, "m@1.1").profiles if p.profile == "quick")
        assert detail.counted is not None and detail.counted["p50_ms"] == p50
    # the app's line under the table says so, in the same words
    from devtrack.tui.screens.releases import row_info
    from tests.tui.tui_seed import plain

    assert NEWER_RUNS_NOTE in plain(row_info(table["1.1"], "quick", ("onnx",)))
    runs = json.loads(run_cli("results", "m@1.1", "-p", "quick", "--json").out)
    assert [r["run_id"] for r in runs if r["counts"]] == [counted["1.1"]["run_id"]]
    assert "✓ the run that counts" in run_cli("results", "m@1.1", "-p", "quick").out


# --- the migration -------------------------------------------------------------------------

def _as_schema_3(db_path: Path) -> dict[int, str]:
    """Turn a workspace's database back into what devtrack wrote at schema 3 (the same rows
    without the column migration 4 adds); returns the conditions hash each run had."""
    conn = sqlite3.connect(db_path)
    try:
        hashes = dict(conn.execute("SELECT id, conditions_hash FROM runs").fetchall())
        conn.execute("DROP INDEX idx_runs_conditions")
        conn.execute("ALTER TABLE runs DROP COLUMN conditions_hash")
        conn.execute("PRAGMA user_version = 3")
        conn.commit()
        assert "conditions_hash" not in [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
    finally:
        conn.close()
    return hashes


def test_the_migration_recomputes_identities_and_audit_verify_stays_green(
        quick_ws: Path, run_cli) -> None:
    _bench(run_cli, "m@1.0")
    _bench(run_cli, "m@1.0", "--threads", "2", "--max-time", "0.3")
    assert run_cli("check", "m@1.0", "--profile", "quick", "--no-rerun").exit_code == 0
    expected = _as_schema_3(quick_ws / ".devtrack" / "devtrack.db")
    assert len(set(expected.values())) == 2  # --threads made another identity
    result = run_cli("audit", "verify")  # the first open upgrades the schema
    assert result.exit_code == 0, result.out + result.err
    with open_workspace(quick_ws) as ws:
        assert ws.store.one("PRAGMA user_version")["user_version"] == 4
        after = {r["id"]: r["conditions_hash"] for r in ws.store.query(
            "SELECT id, conditions_hash FROM runs")}
    assert after == expected
    code, report = _check(run_cli, "--no-rerun")  # the upgraded store is read as before
    assert code == 0 and report["profiles"][0]["run_id"] == min(expected)


def test_the_migration_is_safe_to_meet_twice_and_survives_a_damaged_snapshot(
        quick_ws: Path, run_cli) -> None:
    """Two processes opening an old store can both start migration 4 (the second after the
    first committed): the second must not fail; a snapshot that is not JSON matches nothing."""
    import sqlite_utils

    from devtrack.store import _migration_4

    _bench(run_cli, "m@1.0")
    db_path = quick_ws / ".devtrack" / "devtrack.db"
    expected = _as_schema_3(db_path)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("UPDATE runs SET profile_snapshot = 'not json' WHERE id = ?",
                     (min(expected),))
        conn.execute("INSERT INTO runs (release_id, profile, profile_hash, profile_snapshot, "
                     "status, started_at, finished_at, actor, host) SELECT release_id, "
                     "profile, profile_hash, '{}', 'ok', started_at, finished_at, actor, host "
                     "FROM runs")
        conn.commit()
        db = sqlite_utils.Database(conn)
        _migration_4(db)
        _migration_4(db)  # met again: no duplicate column, same values
        rows = dict(conn.execute("SELECT id, conditions_hash FROM runs").fetchall())
    finally:
        conn.close()
    damaged, defaults = sorted(rows)
    assert rows[damaged] == ""  # never counts
    assert rows[defaults] == Profile(name="x").conditions_hash  # an empty snapshot: defaults
