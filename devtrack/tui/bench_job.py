"""The benchmark the app runs in a background thread: the same library calls as ``bench``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtrack.errors import Aborted
from devtrack.tui.messages import BenchUpdate
from devtrack.workspace import open_workspace

STOPPED_FROM_APP = "stopped from the review app"


def run_bench(root: Path, ref: str, profiles: list[str], report: Callable[[BenchUpdate], None],
              cancelled: Callable[[], bool]) -> BenchUpdate:
    """Measure ``ref`` on each profile (each in its own worker process) and store the runs.

    Runs in a thread: it opens its own connection to the workspace. ``report`` gets a
    ``BenchUpdate`` on every progress poll; when ``cancelled()`` turns true the running
    worker is stopped and stored as aborted ("stopped from the review app"), finished runs
    are kept, as Ctrl-C does on the command line. Returns the final update (``done``),
    whose ``error`` is set when nothing could run.
    """
    from devtrack.benchmarking import BenchOverrides, get_run, plan, run_measurement
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release

    overrides = BenchOverrides()
    with open_workspace(root) as ws:
        release = get_release(ws, ref)
        chosen = [load_profile(name, ws.root) for name in profiles]
        measurements, skipped = plan([release], chosen, overrides)
        total = len(measurements)
        if not measurements:
            return BenchUpdate(ref, 0, 0, ref, done=True, skipped=tuple(skipped),
                               error="nothing to measure: no chosen profile runs "
                                     f"{release.format} models")
        results: list[dict[str, Any]] = []
        for index, m in enumerate(measurements, 1):
            if cancelled():
                break
            label = f"{release.ref} on {m.profile.name}"
            report(BenchUpdate(ref, index, total, label, phase="starting"))

            def progress(event: Any, index: int = index, label: str = label) -> None:
                if cancelled():
                    raise Aborted("benchmark cancelled from the app")
                phase = getattr(event, "phase", None) or (
                    event.get("phase", "") if isinstance(event, dict) else "")
                elapsed = float(getattr(event, "elapsed_s", 0.0) or 0.0)
                report(BenchUpdate(ref, index, total, label, phase=phase or "starting",
                                   elapsed_s=elapsed))

            try:
                results.append(run_measurement(ws, m, overrides, progress=progress,
                                               abort_reason=STOPPED_FROM_APP))
            except Aborted as exc:
                run_id = getattr(exc, "run_id", None)
                if run_id is not None:
                    results.append(get_run(ws, run_id))
                break
    return BenchUpdate(ref, total, total, ref, done=True, results=tuple(results),
                       skipped=tuple(skipped),
                       error="cancelled" if cancelled() else None)
