"""Deploy a release to a device profile, with a reason; ``force`` overrides a missing check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from devtrack.errors import DevtrackError
from devtrack.tui.screens.dialog_base import ReviewDialog, buttons_row, error_line
from devtrack.tui.widgets.reason_field import ReasonField


def run_check(root: Path, ref: str, profile: str, progress: Callable[[str], None]) -> Any:
    """``devtrack check REF --profile PROFILE --bench`` in a worker thread (own connection)."""
    from devtrack.gate import check_release
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:
        return check_release(ws, ref, profiles=[profile], bench=True, progress=progress)


def check_summary(report: Any) -> Text:
    """One line per profile: passed, or the checks that failed."""
    text = Text()
    for p in report.profiles:
        if p.passed:
            text.append(f"check on {p.profile} passed", style="bold green")
            if p.baseline:
                text.append(f" (against {p.baseline})", style="dim")
        else:
            word = "failed" if any(i.failed for i in p.items) else "not measured"
            text.append(f"check on {p.profile} {word}: ", style="bold red")
            text.append("; ".join(i.message for i in p.items if i.blocks), style="red")
        for note in p.notes:
            text.append(f"\n{note}", style="dim")
    return text


@dataclass(frozen=True)
class DeployRequest:
    ref: str
    profile: str
    reason: str
    force: bool


class DeployDialog(ReviewDialog[object]):
    """Pick the profile (the ones that run the release's format), say why, deploy."""

    def __init__(self, ref: str, profiles: list[str], initial: str | None,
                 live: Callable[[str], str], perform: Callable[[DeployRequest], object],
                 root: Path, after_check: Callable[[], None] = lambda: None) -> None:
        super().__init__(perform)
        self._root = root
        self._after_check = after_check
        self.ref = ref
        self.profiles = profiles
        self.initial = initial if initial in profiles else (profiles[0] if profiles else None)
        self._live = live  # profile -> one line on what is live there now

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text.assemble(("Deploy ", "bold"), (self.ref, "bold")),
                         classes="dialog-title")
            yield Static(Text("Deploying needs release notes and a passing check on the "
                              "profile: Run check measures what is missing and runs the gate "
                              "(as 'devtrack check --bench'); force deploys without it and "
                              "records that it did."), classes="dialog-note")
            yield Select[str]([(p, p) for p in self.profiles], value=self.initial or Select.NULL,
                              allow_blank=self.initial is None, id="deploy-profile",
                              prompt="profile", compact=True)
            yield Static("", id="live-note", classes="dialog-note", markup=False)
            yield Static("", id="check-note", classes="dialog-note", markup=False)
            yield ReasonField()
            yield Checkbox("Force: deploy without a passing check (recorded)", id="force",
                           compact=True)
            yield error_line()
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run check", id="check", compact=True)
                yield from buttons_row("Deploy", "warning")

    def on_mount(self) -> None:
        self._show_live()
        self._note("")
        self.query_one(ReasonField).input.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._show_live()
        self._note("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # Textual also runs ReviewDialog.on_button_pressed (handlers run along the MRO), which
        # handles ok/cancel: calling it here as well dismissed the dialog twice.
        if event.button.id == "check":
            event.stop()
            self.start_check()

    def show_error(self, message: str) -> None:
        # The library speaks CLI; in this dialog the override is the Force box.
        super().show_error(message.replace("add --force", "tick Force")
                           .replace("--force", "Force"))

    def start_check(self) -> None:
        """Run the gate for this release and profile in the background (bench if needed)."""
        profile = self.profile
        if profile is None:
            self.show_error("Choose the profile to check on.")
            return
        self.show_error("")  # an earlier refusal is stale once the check runs
        self.query_one("#check", Button).disabled = True
        self._note(Text(f"checking {self.ref} on {profile}…", style="cyan"))
        self._check(profile)

    def _note(self, text: Text | str) -> None:
        note = self.query_one("#check-note", Static)
        note.update(text)
        note.display = bool(str(text))

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def _check(self, profile: str) -> Any:
        worker: Worker[Any] = get_current_worker()

        def progress(message: str) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._note, Text(f"⏵ {message}", style="cyan"))

        return run_check(self._root, self.ref, profile, progress)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "check" or event.state not in (WorkerState.SUCCESS,
                                                                  WorkerState.ERROR):
            return
        self.query_one("#check", Button).disabled = False
        if event.state == WorkerState.SUCCESS:
            self._note(check_summary(event.worker.result))
            self._after_check()
        else:
            error = event.worker.error
            self._note(Text(str(error) if isinstance(error, DevtrackError) else repr(error),
                            style="red"))

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "check")
        super().action_cancel()

    def _show_live(self) -> None:
        profile = self.profile
        note = self._live(profile) if profile else "no profile runs this release's format"
        self.query_one("#live-note", Static).update(Text(note))

    @property
    def profile(self) -> str | None:
        value = self.query_one("#deploy-profile", Select).value
        return value if isinstance(value, str) else None

    def request(self) -> DeployRequest | None:
        profile = self.profile
        if profile is None:
            self.show_error("Choose the profile to deploy to.")
            return None
        reason = self.reason()
        if reason is None:
            return None
        return DeployRequest(self.ref, profile, reason, self.query_one(Checkbox).value)
