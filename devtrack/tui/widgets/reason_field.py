"""A labelled reason input that refuses to be empty: every review action needs a reason."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static


class ReasonField(Vertical):
    """``Reason (required)`` with an input and a one-line error under it."""

    DEFAULT_CSS = """
    ReasonField { height: auto; margin-bottom: 1; }
    ReasonField Input { background: $boost; }
    ReasonField .reason-error { color: $error; height: auto; display: none; }
    """

    def __init__(self, placeholder: str = "why? (recorded in the audit log)",
                 *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        yield Label("Reason (required)")
        yield Input(placeholder=self._placeholder, id="reason-input", compact=True)
        yield Static("", classes="reason-error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one("#reason-input", Input)

    @property
    def value(self) -> str:
        return self.input.value.strip()

    def check(self) -> str | None:
        """The reason, or None after showing why it was refused."""
        if not self.value:
            self.show_error("A reason is required: say why, it goes into the audit log.")
            self.input.focus()
            return None
        self.show_error("")
        return self.value

    def show_error(self, message: str) -> None:
        error = self.query_one(".reason-error", Static)
        error.update(message)
        error.display = bool(message)
