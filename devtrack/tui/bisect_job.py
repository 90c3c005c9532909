"""The bisect the app runs in a background thread: the same library call as ``bisect``, its
progress in the bench bar, its answer in a dialog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack.errors import DevtrackError
from devtrack.tui.messages import BenchUpdate

if TYPE_CHECKING:
    from collections.abc import Callable

    from devtrack.bisecting import BisectProgress, BisectResult
    from devtrack.tui.app import DevtrackApp

KIND = "bisect"


@dataclass(frozen=True)
class BisectRequest:
    """What the bisect dialog confirmed: ``devtrack bisect MODEL --good --bad -p PROFILE``."""

    model: str
    good: str
    bad: str
    profile: str

    @property
    def label(self) -> str:
        return f"{self.model} {self.good} … {self.bad} on {self.profile}"


def progress_update(request: BisectRequest, progress: BisectProgress) -> BenchUpdate:
    """The bench bar's line for a bisect: step n of at most m, the release measured now,
    the last step's ratio and verdict."""
    last = progress.last
    so_far = ""
    if last is not None:
        so_far = (f"; {last.ref.rpartition('@')[2]} ×{last.ratio:.3f} {last.verdict}"
                  if last.ratio is not None else f"; {last.ref.rpartition('@')[2]} skipped")
    current = progress.current.rpartition("@")[2] if progress.current else ""
    if progress.phase == "explaining":
        phase = f"explaining {current} per operator{so_far}"
        index = progress.most
    else:
        phase = f"measuring {current} against {request.good}{so_far}"
        index = progress.done + 1
    return BenchUpdate(f"{request.model}@{request.bad}", index, progress.most, request.label,
                       phase=phase, kind=KIND)


def run_bisect(root: Path, request: BisectRequest,
               report: Callable[[BenchUpdate], None]) -> BisectResult:
    """``devtrack bisect`` in a worker thread (its own connection to the workspace); the
    caller stops it with ``pairing.stop_when`` (Aborted: nothing is stored)."""
    from devtrack.bisecting import bisect_releases
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:
        return bisect_releases(ws, request.model, request.good, request.bad, request.profile,
                               observe=lambda p: report(progress_update(request, p)))


def start_bisect(app: DevtrackApp, request: BisectRequest) -> bool:
    """Start ``request`` in the background (one measurement at a time, as a bench); False,
    with a warning, when a measurement is already running."""
    if app.bench_running or app.measuring.locked():
        app.notify("A measurement is already running; wait for it (ctrl+x cancels it).",
                   severity="warning")
        return False
    app._publish_bench(BenchUpdate(f"{request.model}@{request.bad}", 1, 1, request.label,
                                   phase="planning", kind=KIND))
    app.run_worker(lambda: _work(app, request), thread=True, group="bench", exclusive=True,
                   exit_on_error=False, name=f"bisect {request.label}")
    return True


def _work(app: DevtrackApp, request: BisectRequest) -> None:
    from textual.worker import get_current_worker

    from devtrack.errors import Aborted
    from devtrack.pairing import stop_when

    worker = get_current_worker()
    done = BenchUpdate(f"{request.model}@{request.bad}", 0, 0, request.label, done=True,
                       kind=KIND)
    result: BisectResult | None = None
    error: str | None = None
    try:
        with app.measurement(f"Bisecting {request.label}"), stop_when(
                lambda: worker.is_cancelled or app.stop_requested.is_set()):
            result = run_bisect(app.root, request, lambda update: app.call_from_thread(
                app._publish_bench, update))
    except Aborted:
        error = "cancelled: nothing was stored"
    except DevtrackError as exc:
        error = str(exc)
    except Exception as exc:  # never leave the bar running: say what broke
        error = f"failed: {type(exc).__name__}: {exc}"
    app.call_from_thread(_finished, app, request, done, result, error)


def _finished(app: DevtrackApp, request: BisectRequest, done: BenchUpdate,
              result: BisectResult | None, error: str | None) -> None:
    app._publish_bench(done)
    if result is None:
        app.notify(f"Bisect of {request.label}: {error}", markup=False,
                   severity="warning" if error and error.startswith("cancelled") else "error")
        return
    from devtrack.tui.screens.bisect_dialog import BisectAnswerDialog

    app.data_changed(KIND, f"{request.model}@{request.bad}")
    if not app.stop_requested.is_set():
        app.push_screen(BisectAnswerDialog(result))
