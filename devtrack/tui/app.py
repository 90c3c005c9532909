"""The review app and its factory, shared by the CLI (``devtrack``/``devtrack tui``) and tests."""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, get_current_worker

from devtrack.errors import DevtrackError
from devtrack.tui.messages import BenchUpdate, DataChanged
from devtrack.workspace import Workspace, open_workspace

RELEASE_SCREEN = "release-detail"
STOP_POLL_S = 0.05
WARM_UP_AFTER_S = 0.05
WARM_UP_MODULES = ("devtrack.benchmarking", "devtrack.registry",
                   "devtrack.tui.screens.release_detail")
SCREENS_DIR = Path(__file__).parent / "screens"


class DevtrackApp(App[None]):
    """Review releases of a workspace: tables, detail, compare, trends, audit, actions."""

    TITLE = "devtrack"
    # Every screen keeps its .tcss beside it (CSS_PATH); they are all read here at start-up
    # too, because Textual re-applies the whole stylesheet to every widget the first time a
    # screen brings new CSS: ~50 ms on the first open of each screen otherwise.
    CSS_PATH: ClassVar[list[str | PurePath]] = [
        "app.tcss", *sorted(f"screens/{p.name}" for p in SCREENS_DIR.glob("*.tcss"))]
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True,
                tooltip="Quit the app (asks first while a measurement runs)"),
    ]

    def __init__(self, workspace: Workspace, *, model: str | None = None,
                 profile: str | None = None) -> None:
        super().__init__()
        self.ws = workspace
        self.start_model = model
        self.start_profile = profile
        self.sub_title = workspace.root.name
        self.bench_signal: Signal[BenchUpdate] = Signal(self, "bench")
        self.data_signal: Signal[DataChanged] = Signal(self, "data")
        self.bench_state: BenchUpdate | None = None
        self.measuring_what: str | None = None  # said by the holder of ``measuring``
        self.stop_requested = threading.Event()  # set by "Stop and quit"
        # One measurement at a time: two workers side by side would skew each other's
        # timings. Held (through ``measurement``) by the bench worker and by compare's
        # side-by-side re-runs until their thread ends (a thread worker cannot be stopped
        # mid-run, only told to stop).
        self.measuring = threading.Lock()

    @property
    def root(self) -> Path:
        return self.ws.root

    def on_mount(self) -> None:
        from devtrack.tui.screens.releases import ReleasesScreen

        self.push_screen(ReleasesScreen(model=self.start_model, profile=self.start_profile))
        self.set_timer(WARM_UP_AFTER_S, self._warm_up)

    def _warm_up(self) -> None:
        """Once the first screen is up: import what opening a release needs, then freeze.

        Everything alive after start-up (modules, styles, widgets) lives as long as the app:
        freezing it keeps the collector's full passes, which would walk all of it, from
        stalling key presses on a big workspace by 50-150 ms.
        """
        for module in WARM_UP_MODULES:
            importlib.import_module(module)
        gc.freeze()

    def on_unmount(self) -> None:
        gc.unfreeze()
        self.ws.close()

    def release_screen(self, ref: str, profile: str | None) -> Screen[Any]:
        """The release detail screen showing ``ref``: built once, then reused (opening a
        release then only queries and redraws, ~20 ms instead of ~80 ms)."""
        from devtrack.tui.screens.release_detail import ReleaseDetailScreen

        if not self.is_screen_installed(RELEASE_SCREEN):
            self.install_screen(ReleaseDetailScreen(ref, profile), RELEASE_SCREEN)
        screen = self.get_screen(RELEASE_SCREEN)
        assert isinstance(screen, ReleaseDetailScreen)
        screen.show(ref, profile)
        return screen

    def data_changed(self, what: str, *refs: str) -> None:
        """Tell every open view that the workspace changed (call on the UI thread)."""
        self.data_signal.publish(DataChanged(what, tuple(refs)))

    # -- background benchmark ----------------------------------------------------------------

    @property
    def bench_running(self) -> bool:
        return self.bench_state is not None and not self.bench_state.done


    @contextmanager
    def measurement(self, what: str) -> Iterator[None]:
        """Hold ``measuring`` (in a worker thread) and say what is measured, for the quit
        dialog: "Re-measuring kws@1.1.0 against 1.0.0 side by side"."""
        with self.measuring:
            self.measuring_what = what
            try:
                yield
            finally:
                self.measuring_what = None

    def running_measurement(self) -> str | None:
        """What is being measured now, in words; None when nothing is."""
        state = self.bench_state
        if state is not None and not state.done:
            doing = "Bisecting" if state.kind == "bisect" else "Benchmarking"
            return f"{doing} {state.label} ({state.index} of {state.total})"
        if self.measuring.locked():
            return self.measuring_what or "A measurement is running."
        return None

    def start_bench(self, ref: str, profiles: list[str]) -> bool:
        """Start measuring ``ref`` on ``profiles`` in the background; False if one is running."""
        if self.bench_running or self.measuring.locked():
            self.notify("A measurement is already running; wait for it (ctrl+x cancels a "
                        "bench).", severity="warning")
            return False
        self._publish_bench(BenchUpdate(ref, 1, len(profiles), ref, phase="planning"))
        self._bench_worker(ref, profiles)
        return True

    def cancel_bench(self) -> None:
        if self.bench_running:
            self.workers.cancel_group(self, "bench")
            what = "bisect" if self.bench_state and self.bench_state.kind == "bisect" else (
                "benchmark")
            self.notify(f"Cancelling the {what}: the running worker is being stopped.")

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def _bench_worker(self, ref: str, profiles: list[str]) -> None:
        from devtrack.tui.bench_job import run_bench

        worker: Worker[None] = get_current_worker()
        try:
            with self.measurement(f"Benchmarking {ref}"):
                final = run_bench(self.root, ref, profiles,
                                  report=lambda update: self.call_from_thread(
                                      self._publish_bench, update),
                                  cancelled=lambda: worker.is_cancelled)
        except DevtrackError as exc:
            final = BenchUpdate(ref, 0, len(profiles), ref, done=True, error=str(exc))
        self.call_from_thread(self._bench_finished, final)

    def _publish_bench(self, update: BenchUpdate) -> None:
        self.bench_state = update
        self.bench_signal.publish(update)

    def _bench_finished(self, final: BenchUpdate) -> None:
        self._publish_bench(final)
        ok = sum(1 for r in final.results if r.get("status") == "ok")
        failed = len(final.results) - ok
        if final.error and not final.results:
            self.notify(f"Benchmark of {final.ref}: {final.error}", severity="error",
                        markup=False)
        else:
            summary = f"Benchmark of {final.ref} finished: {ok} ok"
            if failed:
                summary += f", {failed} failed or aborted"
            if final.error:
                summary += f" ({final.error})"
            self.notify(summary, severity="warning" if failed or final.error else "information",
                        markup=False)
        if final.results:
            self.data_changed("runs", final.ref)

    # -- quitting -----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit; while a measurement runs, ask first (it would be lost half-way)."""
        from devtrack.tui.screens.quit_dialog import (
            BENCH_NOTE,
            BISECT_NOTE,
            REMEASURE_NOTE,
            QuitDialog,
        )

        if self.stop_requested.is_set() or self.running_measurement() is None:
            self.exit()  # asked again while stopping: do not wait any longer
            return
        if not isinstance(self.screen, QuitDialog):
            note = REMEASURE_NOTE
            if self.bench_running and self.bench_state is not None:
                note = BISECT_NOTE if self.bench_state.kind == "bisect" else BENCH_NOTE
            self.push_screen(QuitDialog(self.running_measurement, note), self._quit_chosen)

    def _quit_chosen(self, stop: bool | None) -> None:
        if not stop:
            return
        if self.running_measurement() is None:
            self.exit()
            return
        # Stop as ctrl+x does (the interrupted run is stored as aborted, finished ones are
        # kept) and wait for the thread to finish storing: exiting first would leave it
        # running unseen, and the terminal would hang until it ends.
        self.stop_requested.set()
        self.workers.cancel_group(self, "bench")
        self.notify("Stopping the measurement, then quitting (ctrl+q: quit without waiting).")
        self.set_interval(STOP_POLL_S, self._exit_once_stopped)

    def _exit_once_stopped(self) -> None:
        if not self.measuring.locked() and not self.bench_running:
            self.exit()

    def action_help(self) -> None:
        from devtrack.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        hook = getattr(screen, "palette_commands", None)
        if hook is not None:
            yield from hook()
        yield SystemCommand("Help: every key binding", "Show the bindings of this screen",
                            self.action_help)
        yield from super().get_system_commands(screen)


def create_app(workspace: str | Path | None = None, *, model: str | None = None,
               profile: str | None = None) -> DevtrackApp:
    """Open the workspace (search upward when None) and build the app on it."""
    return DevtrackApp(open_workspace(workspace), model=model, profile=profile)


def run_app(workspace: str | Path | None = None, *, model: str | None = None,
            profile: str | None = None) -> None:
    """Run the app in the terminal until the user quits."""
    create_app(workspace, model=model, profile=profile).run()
