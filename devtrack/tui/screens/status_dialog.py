"""Approve, reject or yank a release: pick the new status and say why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import RadioButton, RadioSet, Static

from devtrack.tui.screens.dialog_base import ReviewDialog, buttons_row, error_line
from devtrack.tui.widgets.reason_field import ReasonField

VERBS = {"approved": "Approve", "rejected": "Reject", "yanked": "Yank"}
HINTS = {
    "approved": "fit to deploy",
    "rejected": "not to be deployed; can be reconsidered later",
    "yanked": "withdrawn for good (it cannot be approved again)",
}


@dataclass(frozen=True)
class StatusRequest:
    ref: str
    to: str
    reason: str


class StatusDialog(ReviewDialog[object]):
    """``ModalScreen`` returning the library's result once the status changed, else None."""

    def __init__(self, ref: str, current: str, targets: tuple[str, ...], initial: str,
                 perform: Callable[[StatusRequest], object]) -> None:
        super().__init__(perform)
        self.ref, self.current, self.targets = ref, current, targets
        self.requested = initial
        self.initial = initial if initial in targets else (targets[0] if targets else "")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            title = Text.assemble(("Change the status of ", "bold"), (self.ref, "bold"))
            yield Static(title, classes="dialog-title")
            yield Static(Text(f"Now {self.current}. Every change is recorded in the audit log "
                              "with your name and reason."), classes="dialog-note")
            if self.requested == self.current:
                yield Static(Text(f"{self.ref} is already {self.current}.", style="yellow"),
                             classes="dialog-note")
            if not self.targets:
                yield Static(Text(f"A {self.current} release cannot change status.",
                                  style="yellow"), classes="dialog-note")
            with RadioSet(id="targets"):
                for target in self.targets:
                    yield RadioButton(f"{VERBS[target]}: {HINTS[target]}",
                                      value=target == self.initial, name=target)
            yield ReasonField()
            yield error_line()
            with Horizontal(classes="dialog-buttons"):
                yield from buttons_row(f"{VERBS.get(self.initial, 'Change')}",
                                       "error" if self.initial != "approved" else "success")

    def on_mount(self) -> None:
        self.query_one(ReasonField).input.focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        target = event.pressed.name or ""
        self.query_one("#ok").label = VERBS.get(target, "Change")  # type: ignore[attr-defined]

    @property
    def target(self) -> str | None:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.name if pressed is not None else None

    def request(self) -> StatusRequest | None:
        target = self.target
        if target is None:
            self.show_error(f"{self.ref} is {self.current}: there is no status to change to.")
            return None
        reason = self.reason()
        if reason is None:
            return None
        return StatusRequest(self.ref, target, reason)
