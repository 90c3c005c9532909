"""What every review dialog shares: a title, an error line, OK/Cancel, ``esc`` cancels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from devtrack.errors import DevtrackError
from devtrack.tui.widgets.reason_field import ReasonField

ResultT = TypeVar("ResultT")


class ReviewDialog(ModalScreen[ResultT], Generic[ResultT]):
    """A modal form. ``submit`` runs the library call; its error stays in the dialog.

    Subclasses build their request in :meth:`request` (None when the form is incomplete,
    after saying why) and pass ``perform``, which calls the library and returns the result
    the dialog is dismissed with.
    """

    CSS_PATH = "dialog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Confirm"),
    ]

    def __init__(self, perform: Callable[[Any], ResultT]) -> None:
        super().__init__()
        self._perform = perform

    def request(self) -> Any | None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        request = self.request()
        if request is None:
            return
        try:
            result = self._perform(request)
        except DevtrackError as exc:
            self.show_error(str(exc))
            return
        self.dismiss(result)

    def show_error(self, message: str) -> None:
        error = self.query_one("#dialog-error", Static)
        error.update(Text(message, style="bold red"))
        error.display = bool(message)

    def reason(self) -> str | None:
        return self.query_one(ReasonField).check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_submit()
        elif event.button.id == "cancel":
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()


def error_line() -> Static:
    return Static("", id="dialog-error", markup=False)


def buttons_row(ok_label: str, variant: str = "primary") -> list[Button]:
    return [Button(ok_label, id="ok", variant=variant, compact=True),  # type: ignore[arg-type]
            Button("Cancel", id="cancel", compact=True)]

