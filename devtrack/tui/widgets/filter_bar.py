"""The ``/`` filter box: typing narrows the table below it, ``enter`` keeps it, ``esc`` clears."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """An input that is hidden until ``/`` and reports its text as ``FilterBar.Changed``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_and_close", "Clear filter", show=True),
        Binding("enter", "keep", "Keep filter", show=True),
    ]

    @dataclass
    class Updated(Message):
        """The filter text changed (possibly to empty)."""

        text: str

    @dataclass
    class Closed(Message):
        """The user left the filter box (focus goes back to the table)."""

        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter: type to narrow, enter to keep, esc to clear",
                         id=id, classes="filter-bar")
        self.display = False

    def open(self) -> None:
        self.display = True
        self.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Updated(event.value))

    def action_clear_and_close(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Updated(""))
        self.post_message(self.Closed(""))

    def action_keep(self) -> None:
        if not self.value:
            self.display = False
        self.post_message(self.Closed(self.value))
