"""explain and bisect leave a record: their measurements stored, sealed by an event, verified.

Real onnxruntime workers on a built line: ``mm`` 1.0 and 1.1 (4 MatMul layers), 1.2 (12
layers: the bad step), 1.3 (a TFLite model the onnx-only profile cannot run), 1.4 (an ONNX
custom op no runtime has: its measurement fails); each the parent of the next. Every test
gets its own copy of the workspace (records are written).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from devtrack.workspace import open_workspace
from tests.test_cli_errors import assert_clean_error
from tests.test_comparison import TINY_PROFILE


@pytest.fixture(scope="module")
def line_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devtrack.builders.onnx_models import build_custom_op, build_matmul_chain
    from devtrack.builders.tflite_models import build_tflite_mlp
    from devtrack.registry import RegisterRequest, register_release
    from devtrack.workspace import init_workspace

    root = tmp_path_factory.mktemp("records") / "ws"
    models = tmp_path_factory.mktemp("records_models")
    ws, _ = init_workspace(root)
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    files = {"1.0": build_matmul_chain(models / "a.onnx", size=128, layers=4, seed=0),
             "1.1": build_matmul_chain(models / "b.onnx", size=128, layers=4, seed=1),
             "1.2": build_matmul_chain(models / "c.onnx", size=128, layers=12, seed=2),
             "1.3": build_tflite_mlp(models / "d.tflite"),
             "1.4": build_custom_op(models / "e.onnx")}
    parent = None
    for version, path in files.items():
        register_release(ws, RegisterRequest(file=path, model="mm", version=version,
                                             parent=parent), cwd=root)
        parent = version
    ws.close()
    return root


@pytest.fixture
def line_ws(line_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(line_template, root)
    return root


def _events(root: Path, kind: str) -> list[dict]:
    with open_workspace(root) as ws:
        return [{**e, "payload": json.loads(e["payload"])} for e in ws.store.events(kind=kind)]


def _comparisons(root: Path) -> list[dict]:
    with open_workspace(root) as ws:
        return ws.store.query("SELECT * FROM comparisons ORDER BY id")


def _verify(root: Path) -> list[str]:
    from devtrack.auditing import verify_audit

    with open_workspace(root) as ws:
        result = verify_audit(ws, files=False)
    assert result.problem is None
    return [p.message for p in result.state]


def _edit(root: Path, sql: str) -> None:
    conn = sqlite3.connect(root / ".devtrack" / "devtrack.db")
    with conn:
        conn.execute(sql)
    conn.close()


def test_explain_stores_its_measurement_sealed_by_an_explain_event(line_ws: Path,
                                                                   run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.1", "mm@1.2", "-p", "tiny", "--json")
    assert result.exit_code == 0, result.err
    explained = json.loads(result.out)
    (row,) = _comparisons(line_ws)
    assert row["status"] == "ok" and row["verdict"] is None
    assert row["ratio"] == pytest.approx(explained["ratio"], abs=1e-5)
    details = json.loads(row["details"])
    assert details["kind"] == "explain" and len(details["repeat_ratios"]) == 4
    assert {n["name"] for n in details["b"]["nodes"]} >= {"mm11", "relu11"}
    (event,) = _events(line_ws, "explain")
    assert (event["model"], event["version"]) == ("mm", "1.2")
    payload = event["payload"]
    assert payload["comparison"] == row["id"] and payload["baseline"] == "1.1"
    assert payload["headline"] == explained["headline"]
    assert "added MatMul nodes" in payload["top"]
    assert _verify(line_ws) == []
    log = run_cli("-w", line_ws, "log", "mm")
    assert "explain 1.1 → 1.2 on tiny: +" in " ".join(log.out.split()), log.out


def test_a_hand_edited_explain_measurement_fails_audit_verify(line_ws: Path, run_cli) -> None:
    assert run_cli("-w", line_ws, "explain", "mm@1.0", "mm@1.2", "-p", "tiny").exit_code == 0
    _edit(line_ws, "UPDATE comparisons SET details = '{}'")
    problems = _verify(line_ws)
    assert len(problems) == 1 and "stored fields differ from what event" in problems[0]
    result = run_cli("-w", line_ws, "audit", "verify", "--quick")
    assert result.exit_code == 1 and "comparison 1 of mm@1.2" in result.err


def test_explain_from_the_structure_alone_records_nothing(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.2", "mm@1.3", "-p", "tiny")
    assert result.exit_code == 0, result.err
    assert _comparisons(line_ws) == [] and _events(line_ws, "explain") == []


def test_bisect_stores_every_step_and_one_bisect_event(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.2",
                     "-p", "tiny", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["first_bad"] == "mm@1.2" and data["measurements"] == 2
    rows = {r["id"]: r for r in _comparisons(line_ws)}
    steps = {s["ref"]: s for s in data["steps"]}
    bad_row = rows[steps["mm@1.2"]["comparison_id"]]
    assert bad_row["verdict"] == "slower" and bad_row["ratio"] > 1.5
    assert rows[steps["mm@1.1"]["comparison_id"]]["verdict"] == "unchanged"
    (bisect,) = _events(line_ws, "bisect")
    assert bisect["id"] == data["event_id"] and bisect["version"] == "1.2"
    payload = bisect["payload"]
    assert (payload["good"], payload["bad"], payload["first_bad"], payload["last_good"]) == (
        "1.0", "1.2", "1.2", "1.1")
    assert [s["version"] for s in payload["steps"]] == ["1.2", "1.1"]
    assert {s["comparison"] for s in payload["steps"]} == {
        steps["mm@1.2"]["comparison_id"], steps["mm@1.1"]["comparison_id"]}
    (explain,) = _events(line_ws, "explain")  # the first bad one, explained and recorded
    assert explain["id"] > bisect["id"] and explain["payload"]["baseline"] == "1.1"
    assert len(rows) == 3 and _verify(line_ws) == []
    history = run_cli("-w", line_ws, "history", "mm")
    text = " ".join(history.out.split())
    assert history.exit_code == 0 and "Explains and bisects of mm" in text
    assert "bisect 1.0 … 1.2 on tiny: first bad 1.2 (×" in text
    assert "explain 1.1 → 1.2 on tiny" in text


@pytest.mark.parametrize(("statement", "expected"), [
    ("UPDATE comparisons SET ratio = 0.9 WHERE id = 1", "ratio differs from what event"),
    ("UPDATE comparisons SET verdict = 'unchanged' WHERE id = 1", "verdict differs"),
    ("DELETE FROM comparisons WHERE id = 2", "comparison 2 of mm@1.1 (event"),
    ("UPDATE comparisons SET candidate_release_id = 1 WHERE id = 2", "release"),
])
def test_a_hand_edited_bisect_step_fails_audit_verify(line_ws: Path, run_cli, statement,
                                                      expected) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.2",
                     "-p", "tiny", "--no-explain")
    assert result.exit_code == 0, result.err
    assert _verify(line_ws) == []
    _edit(line_ws, statement)
    problems = _verify(line_ws)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_bisect_that_skips_records_the_skip_without_a_row(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.3",
                     "-p", "tiny", "--json")
    assert result.exit_code == 0, result.err
    assert json.loads(result.out)["first_bad"] is None
    (bisect,) = _events(line_ws, "bisect")
    (step,) = bisect["payload"]["steps"]
    assert step["verdict"] == "skip" and "does not run tflite" in step["reason"]
    assert "comparison" not in step and _comparisons(line_ws) == []
    assert "could not be measured" in bisect["payload"]["note"]
    assert _verify(line_ws) == []


def test_a_stopped_bisect_stores_nothing(line_ws: Path) -> None:
    from devtrack.bisecting import BisectProgress, bisect_releases
    from devtrack.errors import Aborted
    from devtrack.pairing import stop_when

    stop = threading.Event()
    seen: list[BisectProgress] = []

    def observe(progress: BisectProgress) -> None:
        seen.append(progress)
        if progress.done == 1:  # the bad end is measured: stop during the next one
            stop.set()

    with open_workspace(line_ws) as ws, stop_when(stop.is_set), pytest.raises(Aborted):
        bisect_releases(ws, "mm", "1.0", "1.2", "tiny", observe=observe)
    assert [(p.done, p.most, p.current, p.phase) for p in seen] == [
        (0, 2, "mm@1.2", "measuring"), (1, 2, "mm@1.1", "measuring")]
    assert seen[1].last is not None and seen[1].last.verdict == "bad"
    assert _comparisons(line_ws) == [] and _events(line_ws, "bisect") == []
    assert _verify(line_ws) == []


def test_history_with_a_bad_profile_is_one_line_exit_2(line_ws: Path, run_cli) -> None:
    assert_clean_error(run_cli("-w", line_ws, "history", "mm", "-p", "nosuch"), "nosuch")


def _row(version: str, p50: float | None = 1.0, regressed: bool = False,
         deployed: tuple[str, ...] = (), fmt: str = "onnx"):  # type: ignore[no-untyped-def]
    from devtrack.overview import ReleaseOverview

    return ReleaseOverview(
        id=int(version.replace(".", "")), model="mm", version=version, status="candidate",
        created_at="", format=fmt, size_bytes=1, quantization="-", params=1, notes="",
        parent=None, deployed_on=deployed, run_status="ok" if p50 else None, run_error=None,
        runs=1 if p50 else 0, p50_ms=p50,
        regressions=("p50 +50%",) if regressed else (),
        regressed_metrics=("p50_ms",) if regressed else ())


def test_suggest_good_is_the_last_unflagged_else_the_deployed_else_the_first() -> None:
    from devtrack.bisecting import suggest_good

    onnx = lambda fmt: fmt == "onnx"  # noqa: E731
    rows = [_row("1.0", deployed=("tiny",)), _row("1.1"), _row("1.2", p50=None),
            _row("1.3", regressed=True), _row("1.4", regressed=True)]
    choice = suggest_good(rows, "1.4", "tiny", onnx)
    assert choice is not None and choice.version == "1.1"  # 1.2 unmeasured, 1.3 flagged
    assert "not marked as a regression" in choice.why
    flagged = [_row("1.0", p50=None, deployed=("tiny",)), _row("1.1", regressed=True),
               _row("1.2", regressed=True)]
    choice = suggest_good(flagged, "1.2", "tiny", onnx)
    assert choice is not None and (choice.version, choice.why) == ("1.0", "deployed on tiny")
    nothing = [_row("1.0", p50=None), _row("1.1", p50=None, fmt="tflite"),
               _row("1.2", regressed=True)]
    choice = suggest_good(nothing, "1.2", "tiny", onnx)
    assert choice is not None and choice.version == "1.0" and "first" in choice.why
    assert suggest_good([_row("1.0", fmt="tflite"), _row("1.1")], "1.1", "tiny", onnx) is None
    assert suggest_good(rows, "9.9", "tiny", onnx) is None


def test_most_measurements_is_the_bad_end_then_halving() -> None:
    from devtrack.core.bisection import BisectSearch, most_measurements

    assert [most_measurements(n) for n in range(2, 10)] == [1, 2, 3, 3, 4, 4, 4, 4]
    for size in range(2, 12):  # every answer, nothing skipped: never more than said
        for first_bad in range(1, size):
            search, asked = BisectSearch(size), 0
            while (position := search.next_position()) is not None:
                search.mark(position, "bad" if position >= first_bad else "good")
                asked += 1
            assert search.first_bad == first_bad and asked <= most_measurements(size)
    with pytest.raises(ValueError):
        most_measurements(1)


def test_explain_and_bisect_records_verify_on_postgresql(tmp_path: Path, pg_url: str,
                                                          run_cli) -> None:
    from devtrack.builders.onnx_models import build_matmul_chain

    root = tmp_path / "team"
    assert run_cli("init", root, "--database", pg_url).exit_code == 0
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    parent: tuple[str, ...] = ()
    for version, layers in (("1.0", 4), ("1.1", 4), ("1.2", 12)):
        model = build_matmul_chain(tmp_path / f"{version}.onnx", size=128, layers=layers,
                                   seed=len(parent))
        registered = run_cli("register", model, "-m", "mm", "-v", version, *parent,
                             "-w", root)
        assert registered.exit_code == 0, registered.err
        parent = ("--parent", version)
    bisected = run_cli("bisect", "mm", "--good", "1.0", "--bad", "1.2", "-p", "tiny", "--json",
                       "-w", root)
    assert bisected.exit_code == 0, bisected.err
    data = json.loads(bisected.out)
    assert data["first_bad"] == "mm@1.2" and data["event_id"] is not None
    assert data["explanation"]["b"] == "mm@1.2"
    verified = run_cli("audit", "verify", "--quick", "-w", root)
    assert verified.exit_code == 0, (verified.out, verified.err)
    log = run_cli("log", "mm", "--kind", "bisect", "--json", "-w", root)
    (event,) = json.loads(log.out)
    assert event["payload"]["first_bad"] == "1.2" and len(event["payload"]["steps"]) == 2


def test_an_investigation_in_one_line() -> None:
    from devtrack.investigations import investigation_summary

    bisect = {"good": "1.0", "bad": "1.3", "profile": "tiny", "first_bad": "1.2",
              "last_good": "1.1", "maybe": [], "measurements": 1,
              "steps": [{"version": "1.2", "ratio": 2.5, "verdict": "bad"}]}
    assert investigation_summary("bisect", "mm", "1.2", bisect) == (
        "bisect 1.0 … 1.3 on tiny: first bad 1.2 (×2.500), after 1.1; 1 measurement")
    none = {**bisect, "first_bad": None, "note": "mm@1.3 is not slower", "measurements": 2}
    assert investigation_summary("bisect", "mm", "1.3", none) == (
        "bisect 1.0 … 1.3 on tiny: mm@1.3 is not slower")
    explain = {"baseline": "1.1", "profile": "tiny", "status": "ok",
               "headline": "+1 ms (+50%): 90% in 2 added MatMul nodes a, b; what changed: x"}
    assert investigation_summary("explain", "mm", "1.2", explain) == (
        "explain 1.1 → 1.2 on tiny: +1 ms (+50%): 90% in 2 added MatMul nodes a, b")
    failed = {**explain, "status": "failed", "error": "FancyGelu"}
    assert investigation_summary("explain", "mm", "1.2", failed).endswith(
        "measurement failed: FancyGelu")


def test_a_failed_explain_measurement_is_recorded_too(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.0", "mm@1.4", "-p", "tiny")
    assert result.exit_code == 1 and "FancyGelu" in result.err, result.err
    (row,) = _comparisons(line_ws)
    assert row["status"] == "failed" and "FancyGelu" in row["error"] and row["ratio"] is None
    (event,) = _events(line_ws, "explain")
    assert event["payload"]["status"] == "failed" and "headline" not in event["payload"]
    assert _verify(line_ws) == []
    log = run_cli("-w", line_ws, "log", "mm", "--kind", "explain")
    assert "measurement failed" in " ".join(log.out.split())
