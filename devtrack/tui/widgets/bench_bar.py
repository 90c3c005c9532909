"""A one-line bar that shows the background benchmark's progress on any screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from devtrack.tui.messages import BenchUpdate

if TYPE_CHECKING:
    from devtrack.tui.app import DevtrackApp

BAR_WIDTH = 20


class BenchBar(Static):
    """Hidden while no benchmark runs; otherwise ``⏵ bench label: phase 1.2s 1/2 ━━━╺━━``."""

    DEFAULT_CSS = """
    BenchBar { height: 1; display: none; background: $primary-background; }
    BenchBar.-active { display: block; }
    """

    def on_mount(self) -> None:
        app: DevtrackApp = self.app  # type: ignore[assignment]
        app.bench_signal.subscribe(self, self.show_update)
        if app.bench_state is not None and not app.bench_state.done:
            self.show_update(app.bench_state)

    def show_update(self, update: BenchUpdate) -> None:
        self.set_class(not update.done, "-active")
        if update.done:
            return
        text = bar_text(update)
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True)
        grid.add_column(width=BAR_WIDTH)
        grid.add_row(text, ProgressBar(total=1.0, completed=update.fraction, width=BAR_WIDTH))
        self.update(grid)


def bar_text(update: BenchUpdate) -> Text:
    """``⏵ bench kws@1.1 on ci-host: measure 1.2s  1/2``; with several devices measuring at
    once, each one's job and phase: ``⏵ bench kws@1.1 on pi: load 0.4s · kws@1.1 on …``."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"⏵ {update.kind} ", style="bold")
    lanes = update.lanes if len(update.lanes) > 1 else ()
    for number, lane in enumerate(lanes):
        if number:
            text.append(" · ", style="dim")
        text.append(f"{lane.label}: {lane.phase or 'starting'}")
        if lane.elapsed_s:
            text.append(f" {lane.elapsed_s:.1f}s", style="dim")
    if not lanes:
        text.append(f"{update.label}: {update.phase or 'starting'}")
        if update.elapsed_s:
            text.append(f" {update.elapsed_s:.1f}s", style="dim")
    done = (f"step {update.index} of at most {update.total}" if update.kind == "bisect"
            else f"{update.completed}/{update.total} done")
    text.append(f"  {done}  ctrl+x cancels", style="dim")
    return text
