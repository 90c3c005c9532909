"""Asked on quit while a measurement runs: keep measuring, or stop it and quit."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from devtrack.tui.screens.dialog_base import ReviewDialog

REFRESH_S = 0.25
WIDTH = 64
NOTHING_RUNS = "The measurement has finished: nothing is running now."
BENCH_NOTE = ("Stopping keeps the runs that have finished; the one in progress is stored as "
              "aborted.")
REMEASURE_NOTE = "Stopping discards this re-measure: nothing of it is stored."
BISECT_NOTE = "Stopping discards this bisect: none of its steps is stored."


class QuitDialog(ReviewDialog[bool]):
    """``ModalScreen`` returning True to stop the measurement and quit, None to keep on.

    "Keep measuring" has the focus, so enter and esc both keep the app and the measurement
    running. ``running()`` says what is measured now (None once it has finished); the
    dialog follows it while it is open. ``note`` says what stopping keeps.
    """

    AUTO_FOCUS = "#cancel"

    def __init__(self, running: Callable[[], str | None], note: str = BENCH_NOTE) -> None:
        super().__init__(lambda _request: True)
        self._what_runs = running
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text("Quit while measuring?", style="bold"), classes="dialog-title")
            yield Static(self._describe(), id="quit-running", classes="dialog-note")
            yield Static(Text(self.note), id="quit-note", classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop and quit", id="ok", variant="error", compact=True)
                yield Button("Keep measuring", id="cancel", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#dialog").styles.width = WIDTH
        self.set_interval(REFRESH_S, self._follow)

    def _describe(self) -> Text:
        what = self._what_runs()
        return Text(what, style="bold") if what else Text(NOTHING_RUNS, style="yellow")

    def _follow(self) -> None:
        self.query_one("#quit-running", Static).update(self._describe())
        if self._what_runs() is None:  # finished meanwhile: nothing left to stop or keep
            self.query_one("#ok", Button).label = "Quit"
            self.query_one("#cancel", Button).label = "Stay"
            self.query_one("#quit-note", Static).display = False

    def request(self) -> bool:
        return True
