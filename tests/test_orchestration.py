"""The one bench loop (orchestration.py): devices in parallel, local jobs one at a time,
progress events, stopping on request and on a signal — with real workers and real SQLite.

No remote device exists here, so two test-only target schemes are registered whose runner
is the real local worker: distinct target strings are distinct devices, as ssh:// and adb://
targets will be.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from devtrack.benchmarking import BenchOverrides
from devtrack.core.profile import Profile
from devtrack.errors import NotFoundError, UsageError
from devtrack.interrupts import signals_interrupt
from devtrack.orchestration import BenchOutcome, JobEvent, bench, plan_bench
from devtrack.profiles import load_profile
from devtrack.registry import RegisterRequest, get_release, register_release
from devtrack.targets import LOCAL, Target, TargetJob, device_of, registered_target, run_local
from devtrack.workspace import Workspace, init_workspace

PROFILE = """name = "{name}"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 120
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = {min_time}
max_time_s = {max_time}
target_rel_ci = 0.05
"""
QUICK = {"min_time": 0.5, "max_time": 1.0}
SLOW = {"min_time": 30, "max_time": 40}
STOP_WAIT_S = 90  # bound on any wait for a worker to reach a phase


@dataclass
class Spans:
    """When each job held its device, as the runner saw it (monotonic seconds)."""

    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def target(self, scheme: str) -> Target:
        def run(task: TargetJob) -> dict[str, Any]:
            start = time.monotonic()
            try:
                return run_local(task)  # the real worker process, on this host
            finally:
                with self.lock:
                    self.spans[task.profile.name] = (start, time.monotonic())

        if scheme == LOCAL:
            return Target(LOCAL, run, lambda profile: LOCAL)
        return Target(scheme, run)  # the device is the target string

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return max(a0, b0) < min(a1, b1)


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorder = Spans()
    with registered_target(recorder.target("labtest")), registered_target(
            recorder.target(LOCAL)):
        yield recorder


@pytest.fixture
def ws(tmp_path: Path, mlp_onnx: Path) -> Iterator[Workspace]:
    workspace, _ = init_workspace(tmp_path / "ws")
    with workspace:
        register_release(workspace, RegisterRequest(mlp_onnx, "mlp", "1.0"), cwd=tmp_path)
        yield workspace


def profile(ws: Workspace, name: str, target: str = LOCAL,
            window: dict[str, float] | None = None) -> Profile:
    """A fast (or slow) profile measuring on ``target``."""
    path = ws.root / "device_profiles" / f"{name}.toml"
    path.write_text(PROFILE.format(name=name, **(window or QUICK)), encoding="utf-8")
    loaded = load_profile(name, ws.root)
    # Profiles may not name a target no runner serves yet: set it as a remote runner's
    # profile would carry it.
    return replace(loaded, execution=replace(loaded.execution, target=target))


def run(ws: Workspace, profiles: list[Profile], **kwargs: Any) -> tuple[BenchOutcome,
                                                                        list[JobEvent]]:
    events: list[JobEvent] = []
    on_event = kwargs.pop("on_event", events.append)
    outcome = bench(ws, [get_release(ws, "mlp@1.0")], profiles, BenchOverrides(),
                    on_event=on_event, **kwargs)
    return outcome, events


def stored(ws: Workspace) -> dict[str, dict[str, Any]]:
    rows = ws.store.query("SELECT profile, status, error, started_at, finished_at FROM runs")
    return {row["profile"]: row for row in rows}


def test_devices_run_in_parallel_and_local_jobs_one_after_another(ws: Workspace,
                                                                  spans: Spans) -> None:
    chosen = [profile(ws, "board-a", "labtest://a"), profile(ws, "board-b", "labtest://b"),
              profile(ws, "local-1"), profile(ws, "local-2")]
    outcome, _ = run(ws, chosen)
    assert [r["status"] for r in outcome.runs] == ["ok"] * 4, [r["error"] for r in outcome.runs]
    assert outcome.devices == ["labtest://a", "labtest://b", LOCAL]
    assert outcome.stopped is None and outcome.not_run == []
    # two devices measured at the same time, and the local device alongside them
    assert spans.overlap("board-a", "board-b")
    assert spans.overlap("board-a", "local-1") and spans.overlap("board-b", "local-1")
    # ... but the local device never ran two measurements at once
    assert not spans.overlap("local-1", "local-2")
    rows = stored(ws)
    assert rows["local-2"]["started_at"] >= rows["local-1"]["finished_at"]
    assert rows["board-b"]["started_at"] < rows["board-a"]["finished_at"]


def test_two_profiles_on_one_remote_device_take_turns(ws: Workspace, spans: Spans) -> None:
    chosen = [profile(ws, "pi-1t", "labtest://pi"), profile(ws, "pi-again", "labtest://pi")]
    assert {device_of(p) for p in chosen} == {"labtest://pi"}
    outcome, _ = run(ws, chosen)
    assert [r["status"] for r in outcome.runs] == ["ok", "ok"]
    assert not spans.overlap("pi-1t", "pi-again")


def test_every_job_reports_planned_started_phases_finished_in_the_callers_thread(
        ws: Workspace, spans: Spans) -> None:
    threads: set[str] = set()
    events: list[JobEvent] = []

    def on_event(event: JobEvent) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    chosen = [profile(ws, "local-1"), profile(ws, "board-a", "labtest://a")]
    outcome, _ = run(ws, chosen, on_event=on_event)
    assert threads == {threading.current_thread().name}
    assert [e.kind for e in events[:2]] == ["planned", "planned"]
    for index, name, device in ((1, "local-1", LOCAL), (2, "board-a", "labtest://a")):
        mine = [e for e in events if e.index == index]
        kinds = [e.kind for e in mine]
        assert kinds[0] == "planned" and kinds[1] == "started" and kinds[-1] == "finished"
        assert set(kinds[2:-1]) == {"phase"}
        assert {e.device for e in mine} == {device}
        assert {e.label for e in mine} == {f"mlp@1.0 on {name}"}
        assert {e.total for e in mine} == {2}
        assert "measure" in [e.phase for e in mine if e.kind == "phase"]
        finished = mine[-1]
        row = ws.store.one("SELECT id, status FROM runs WHERE profile = ?", (name,))
        assert row is not None and finished.run_id == row["id"]
        assert finished.status == row["status"] == "ok" and finished.run is not None
    assert [r["run_id"] for r in outcome.runs] == [
        e.run_id for e in sorted((e for e in events if e.kind == "finished"),
                                 key=lambda e: e.index)]


def test_a_stop_request_aborts_every_running_device_and_starts_nothing_more(
        ws: Workspace, spans: Spans) -> None:
    chosen = [profile(ws, "quick"), profile(ws, "slow-local", window=SLOW),
              profile(ws, "slow-board", "labtest://a", window=SLOW),
              profile(ws, "never", window=QUICK)]
    measuring: set[str] = set()
    seen: list[JobEvent] = []

    def on_event(event: JobEvent) -> None:
        seen.append(event)
        if event.kind == "phase" and event.phase == "measure":
            measuring.add(event.label)

    deadline = time.monotonic() + STOP_WAIT_S

    def stop() -> bool:
        assert time.monotonic() < deadline, f"no worker measured: {seen[-3:]}"
        return {"mlp@1.0 on slow-local", "mlp@1.0 on slow-board"} <= measuring

    outcome, _ = run(ws, chosen, on_event=on_event, stop=stop,
                     stop_reason="stopped from the review app")
    assert outcome.stopped == "stopped from the review app"
    assert outcome.interrupted is None
    assert [(r["profile"], r["status"]) for r in outcome.runs] == [
        ("quick", "ok"), ("slow-local", "aborted"), ("slow-board", "aborted")]
    rows = stored(ws)
    assert set(rows) == {"quick", "slow-local", "slow-board"}  # "never" never started
    assert rows["slow-local"]["error"] == rows["slow-board"]["error"] == (
        "stopped from the review app")
    assert outcome.not_run == ["mlp@1.0 on never"]
    assert [e.status for e in seen if e.kind == "finished"] == ["ok", "aborted", "aborted"]


def test_sigterm_stops_every_device_and_names_the_signal(ws: Workspace, spans: Spans) -> None:
    chosen = [profile(ws, "slow-local", window=SLOW),
              profile(ws, "slow-board", "labtest://a", window=SLOW)]
    measuring: set[str] = set()
    deadline = time.monotonic() + STOP_WAIT_S

    def on_event(event: JobEvent) -> None:
        assert time.monotonic() < deadline, "no worker measured"
        if event.kind == "phase" and event.phase == "measure":
            measuring.add(event.label)
            if len(measuring) == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # as a cancelled CI job sends it

    with signals_interrupt():
        outcome, _ = run(ws, chosen, on_event=on_event)
    assert outcome.interrupted is not None and outcome.interrupted.exit_code == 143
    assert outcome.stopped == "stopped by SIGTERM (e.g. a cancelled CI job)"
    rows = stored(ws)
    assert {name: row["status"] for name, row in rows.items()} == {
        "slow-local": "aborted", "slow-board": "aborted"}
    assert {row["error"] for row in rows.values()} == {outcome.stopped}
    assert [r["status"] for r in outcome.runs] == ["aborted", "aborted"]


def test_a_target_no_runner_serves_is_refused_before_anything_runs(ws: Workspace) -> None:
    chosen = [profile(ws, "local-1"), profile(ws, "phone", "nosuch://serial")]
    with pytest.raises(UsageError, match=r"^profile phone: no runner for target "
                                         r"'nosuch://serial' \(known: .*local"):
        plan_bench(ws, [get_release(ws, "mlp@1.0")], chosen, BenchOverrides())
    assert ws.store.query("SELECT id FROM runs") == []


def test_nothing_to_measure_reports_each_skipped_pair_first(ws: Workspace) -> None:
    events: list[JobEvent] = []
    tflite_only = replace(profile(ws, "tfl"), formats=("tflite",))
    with pytest.raises(NotFoundError, match="nothing to measure"):
        run(ws, [tflite_only], on_event=events.append)
    assert [(e.kind, e.label) for e in events] == [
        ("skipped", "mlp@1.0 on tfl: profile does not run onnx models")]


def test_check_bench_measures_what_lacks_a_run_on_every_device_at_once(
        ws: Workspace, spans: Spans) -> None:
    from devtrack.gate import _measure_missing

    chosen = [profile(ws, "board-a", "labtest://a"), profile(ws, "board-b", "labtest://b")]
    said: list[str] = []
    _measure_missing(ws, get_release(ws, "mlp@1.0"), None, chosen, True, said.append)
    assert sorted(said) == ["measuring mlp@1.0 on board-a", "measuring mlp@1.0 on board-b"]
    assert {name: row["status"] for name, row in stored(ws).items()} == {
        "board-a": "ok", "board-b": "ok"}
    assert spans.overlap("board-a", "board-b")
    _measure_missing(ws, get_release(ws, "mlp@1.0"), None, chosen, True, said.append)
    assert len(said) == 2 and len(stored(ws)) == 2  # each now has a run that counts


def test_a_failing_progress_display_stops_every_device_and_leaves_no_worker(
        ws: Workspace, spans: Spans) -> None:
    chosen = [profile(ws, "slow-local", window=SLOW),
              profile(ws, "slow-board", "labtest://a", window=SLOW)]

    def on_event(event: JobEvent) -> None:
        if event.kind == "phase" and event.phase == "measure":
            raise ValueError("the display broke")

    with pytest.raises(ValueError, match="the display broke"):
        run(ws, chosen, on_event=on_event)
    rows = stored(ws)
    assert {name: row["status"] for name, row in rows.items()} == {
        "slow-local": "aborted", "slow-board": "aborted"}
    assert {row["error"] for row in rows.values()} == {
        "stopped: ValueError in devtrack while measuring"}
    assert not [t for t in threading.enumerate() if t.name.startswith("bench ")]


def test_a_job_that_cannot_start_raises_after_the_running_ones_are_stored(
        ws: Workspace, spans: Spans, mlp_onnx_b: Path, tmp_path: Path) -> None:
    from devtrack.errors import DevtrackError

    register_release(ws, RegisterRequest(mlp_onnx_b, "mlp", "2.0"), cwd=tmp_path)
    broken = get_release(ws, "mlp@2.0")
    stored_file = ws.artifacts.path_for(broken.sha256)
    stored_file.chmod(0o644)
    stored_file.write_bytes(b"not the model any more")
    chosen = [profile(ws, "board-a", "labtest://a"),
              profile(ws, "board-b", "labtest://b", window={"min_time": 3, "max_time": 4})]
    events: list[JobEvent] = []
    with pytest.raises(DevtrackError, match=r"was modified .* refusing to benchmark it"):
        bench(ws, [get_release(ws, "mlp@1.0"), broken], chosen, BenchOverrides(),
              on_event=events.append)
    # mlp@2.0 never started anywhere; the mlp@1.0 job still measuring on board-b finished
    rows = ws.store.query("SELECT release_id, profile, status FROM runs ORDER BY id")
    assert sorted((r["profile"], r["status"]) for r in rows) == [
        ("board-a", "ok"), ("board-b", "ok")]
    assert {r["release_id"] for r in rows} == {get_release(ws, "mlp@1.0").id}
    assert [e.label for e in events if e.kind == "started"] == [
        "mlp@1.0 on board-a", "mlp@1.0 on board-b"]


def test_side_by_side_measurements_run_on_the_profiles_target(ws: Workspace,
                                                               mlp_onnx_b: Path,
                                                               tmp_path: Path) -> None:
    """compare --rerun, check, explain and bisect reach a device through the same seam."""
    from devtrack.pairing import RerunSettings, measure_pair, measured_profile

    register_release(ws, RegisterRequest(mlp_onnx_b, "mlp", "2.0"), cwd=tmp_path)
    handed: list[TargetJob] = []

    def run_on_board(task: TargetJob) -> dict[str, Any]:
        handed.append(task)
        return run_local(task)

    board = profile(ws, "board", "labtest://a")
    board = replace(board, execution=replace(board.execution, memory_limit_mb=512))
    with registered_target(Target("labtest", run_on_board)):
        result = measure_pair(ws, get_release(ws, "mlp@1.0"), get_release(ws, "mlp@2.0"),
                              measured_profile(board),
                              RerunSettings(repeats=4, repeat_s=0.2, sequential=False))
    assert result.ok, result.error
    [task] = handed
    assert "pair" in task.job and task.job["protocol"] == 1
    assert task.profile.execution.memory_limit_mb == 1024  # two models resident at once
    assert task.profile.execution.target == "labtest://a"
