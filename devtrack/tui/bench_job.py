"""The benchmark the app runs in a background thread: the library's bench, as ``bench`` runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack.errors import NotFoundError
from devtrack.tui.messages import BenchLane, BenchUpdate
from devtrack.workspace import open_workspace

if TYPE_CHECKING:
    from devtrack.orchestration import JobEvent

STOPPED_FROM_APP = "stopped from the review app"


class _Lanes:
    """Turns the library's job events into the app's ``BenchUpdate``s."""

    def __init__(self, ref: str, total: int, report: Callable[[BenchUpdate], None]) -> None:
        self.ref, self.total, self.report = ref, total, report
        self.index = 0
        self.completed = 0
        self.skipped: list[str] = []
        self.lanes: dict[str, BenchLane] = {}

    def __call__(self, event: JobEvent) -> None:
        if event.kind == "skipped":
            self.skipped.append(event.label)
            return
        self.total = event.total
        if event.kind == "planned":
            return
        if event.kind == "started":
            self.index = max(self.index, event.index)
            self.lanes[event.device] = BenchLane(event.device, event.label)
        elif event.kind == "phase":
            self.lanes[event.device] = replace(
                self.lanes.get(event.device, BenchLane(event.device, event.label)),
                phase=event.phase or "starting", elapsed_s=event.elapsed_s)
        elif event.kind == "finished":
            self.completed += 1
            self.lanes.pop(event.device, None)
        lane = self.lanes.get(event.device)
        self.report(BenchUpdate(
            self.ref, self.index, self.total, event.label,
            phase=lane.phase if lane else (event.status or ""),
            elapsed_s=lane.elapsed_s if lane else 0.0,
            lanes=tuple(self.lanes.values()), completed=self.completed))


def run_bench(root: Path, ref: str, profiles: list[str], report: Callable[[BenchUpdate], None],
              cancelled: Callable[[], bool]) -> BenchUpdate:
    """Measure ``ref`` on each profile (``orchestration.bench``: each in its own worker, one
    per device at a time, devices in parallel) and store the runs.

    Runs in a thread: it opens its own connection to the workspace. ``report`` gets a
    ``BenchUpdate`` on every progress poll; when ``cancelled()`` turns true the running
    workers are stopped and stored as aborted ("stopped from the review app"), finished runs
    are kept, as Ctrl-C does on the command line. Returns the final update (``done``),
    whose ``error`` is set when nothing could run.
    """
    from devtrack.benchmarking import BenchOverrides
    from devtrack.orchestration import bench
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release

    with open_workspace(root) as ws:
        release = get_release(ws, ref)
        chosen = [load_profile(name, ws.root) for name in profiles]
        lanes = _Lanes(ref, len(chosen), report)
        try:
            outcome = bench(ws, [release], chosen, BenchOverrides(), on_event=lanes,
                            stop=cancelled, stop_reason=STOPPED_FROM_APP)
        except NotFoundError:
            return BenchUpdate(ref, 0, 0, ref, done=True, skipped=tuple(lanes.skipped),
                               error="nothing to measure: no chosen profile runs "
                                     f"{release.format} models")
    total = lanes.total
    return BenchUpdate(ref, total, total, ref, done=True, results=tuple(outcome.runs),
                       skipped=tuple(lanes.skipped), completed=len(outcome.runs),
                       error="cancelled" if outcome.stopped or cancelled() else None)
