"""Choose the profiles to benchmark a release on; it then runs in the background."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, SelectionList, Static

from devtrack.tui.screens.dialog_base import ReviewDialog, buttons_row, error_line


class BenchDialog(ReviewDialog[list[str]]):
    """Returns the chosen profile names (at least one), or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "enter", "Start", priority=True),
    ]

    def __init__(self, ref: str, profiles: list[tuple[str, str]], initial: str | None,
                 skipped: list[str]) -> None:
        super().__init__(lambda names: names)
        self.ref = ref
        self.profiles = profiles  # (name, one-line description)
        self.initial = initial
        self.skipped = skipped

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text.assemble(("Benchmark ", "bold"), (self.ref, "bold")),
                         classes="dialog-title")
            yield Static(Text("Each profile runs in its own worker process, in the "
                              "background: keep reviewing while it measures. space toggles "
                              "a profile, enter starts."), classes="dialog-note")
            yield SelectionList[str](
                *[(Text(f"{name}  {description}"), name, name == self.initial)
                  for name, description in self.profiles], id="bench-profiles")
            if self.skipped:
                yield Static(Text("Not offered: " + "; ".join(self.skipped), style="dim"),
                             classes="dialog-note")
            yield error_line()
            with Horizontal(classes="dialog-buttons"):
                yield from buttons_row("Start")

    def on_mount(self) -> None:
        selection = self.query_one(SelectionList)
        names = [name for name, _ in self.profiles]
        if self.initial in names:
            selection.highlighted = names.index(self.initial)
        selection.focus()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        self.show_error("")

    def action_enter(self) -> None:
        """``enter`` starts, except on a focused button, which it presses."""
        if isinstance(self.focused, Button):
            self.focused.press()
        else:
            self.action_submit()

    def request(self) -> list[str] | None:
        chosen = list(self.query_one(SelectionList).selected)
        if not chosen:
            self.show_error("Choose at least one profile (space toggles).")
            return None
        return [name for name, _ in self.profiles if name in chosen]
