"""Bisect a flagged release: confirm the plan (from which release, which path, how many
measurements), then read the answer (first bad, its ratio, why, what was skipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Select, Static

from devtrack.errors import DevtrackError
from devtrack.tui.screens.dialog_base import ReviewDialog, buttons_row, error_line

if TYPE_CHECKING:
    from devtrack.bisecting import BisectPlan, BisectResult, GoodChoice
    from devtrack.tui.bisect_job import BisectRequest

Planner = Callable[[str], "BisectPlan"]  # good version -> the plan (raises DevtrackError)
TOP = 3


def plan_text(plan: BisectPlan) -> Text:
    """The plan as the dialog shows it: the releases in range, the profile, the rule."""
    text = Text()
    text.append(f"{len(plan.path)} releases", style="bold")
    text.append(f" along the {plan.path_kind}: ")
    text.append(" → ".join(r.version for r in plan.path))
    text.append("\nprofile ")
    text.append(plan.profile.name, style="bold")
    text.append(f": a release is bad when it is slower than {plan.good.ref} by more than "
                f"{plan.threshold_pct:g}%, measured side by side with it in one worker")
    most = plan.most_measurements
    text.append(f"\nat most {most} side-by-side measurement{'s' if most != 1 else ''} (more "
                "if a release cannot run), then the first bad one is explained per operator",
                style="dim")
    return text


class BisectDialog(ReviewDialog["BisectRequest"]):
    """Choose the good release (a sensible one preselected), see the plan, start."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "enter", "Start", priority=True),
    ]

    def __init__(self, model: str, bad: str, profile: str, earlier: list[str],
                 choice: GoodChoice | None, planner: Planner) -> None:
        super().__init__(self._request_for)
        self.model = model
        self.bad = bad
        self.profile = profile
        self.earlier = earlier  # versions before ``bad`` the profile can run, oldest first
        self.choice = choice
        self._planner = planner
        self.plan: BisectPlan | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text.assemble(("Bisect ", "bold"), (f"{self.model}@{self.bad}", "bold"),
                                       (f" on {self.profile}", "bold")),
                         classes="dialog-title")
            yield Static(Text("Which release made it slower? Each step measures one release "
                              "side by side with the good one, in the background: keep "
                              "reviewing meanwhile (ctrl+x stops it; nothing is stored then)."),
                         classes="dialog-note")
            initial = self.choice.version if self.choice is not None else None
            yield Select[str]([(f"good: {v}", v) for v in reversed(self.earlier)],
                              value=initial if initial in self.earlier else Select.NULL,
                              allow_blank=initial not in self.earlier, prompt="good release",
                              id="bisect-good", compact=True)
            yield Static("", id="bisect-why", classes="dialog-note", markup=False)
            yield Static("", id="bisect-plan", classes="dialog-note", markup=False)
            yield error_line()
            with Horizontal(classes="dialog-buttons"):
                yield from buttons_row("Start")

    def on_mount(self) -> None:
        self._show_plan()
        self.query_one("#ok", Button).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._show_plan()

    def _good(self) -> str | None:
        value = self.query_one("#bisect-good", Select).value
        return value if isinstance(value, str) else None

    def _show_plan(self) -> None:
        good = self._good()
        why = self.query_one("#bisect-why", Static)
        if self.choice is not None and good == self.choice.version:
            why.update(Text(f"{good}: {self.choice.why}", style="dim"))
        else:
            why.update(Text("" if good else "Pick the release to start from.", style="dim"))
        self.plan = None
        self.show_error("")
        text = Text()
        if good is not None:
            try:
                self.plan = self._planner(good)
                text = plan_text(self.plan)
            except DevtrackError as exc:
                self.show_error(str(exc))
        self.query_one("#bisect-plan", Static).update(text)

    def action_enter(self) -> None:
        """``enter`` starts, except on a focused button or the open list."""
        if isinstance(self.focused, Button):
            self.focused.press()
        elif isinstance(self.focused, Select):
            self.focused.expanded = True
        else:
            self.action_submit()

    def request(self) -> BisectPlan | None:
        if self.plan is None and self._good() is None:
            self.show_error("Pick the release to start from.")
        return self.plan  # None: the error line says why

    def _request_for(self, plan: BisectPlan) -> BisectRequest:
        from devtrack.tui.bisect_job import BisectRequest

        return BisectRequest(plan.model, plan.good.version, plan.bad.version, plan.profile.name)


def answer_text(result: BisectResult, top: int = TOP) -> Text:
    """The bisect's answer: first bad with its ratio and CI, why, what was skipped, steps."""
    from devtrack.explaining import contributor_lines

    text = Text()
    if result.first_bad is None:
        text.append(result.note or "No release passes the threshold.", style="bold")
    else:
        text.append("First bad: ", style="bold")
        text.append(result.first_bad, style="bold red")
        step = result.step_of(result.first_bad)
        if step is not None and step.ratio is not None:
            text.append(f"  ×{step.ratio:.3f} [{step.ci_low:.3f}, {step.ci_high:.3f}]",
                        style="bold")
            text.append(f" against {result.good} (limit {result.threshold_pct:g}%)",
                        style="dim")
        text.append(f"\nLast good: {result.last_good}")
        if result.candidates:
            text.append(f"\nOr one of the skipped {', '.join(result.candidates)}: they "
                        "could not be measured", style="yellow")
    if result.explanation is not None:
        text.append("\n\nWhy (per operator, side by side): ", style="bold")
        text.append(result.explanation.headline)
        for line in contributor_lines(result.explanation)[:top]:
            text.append(f"\n  • {line}")
    elif result.explain_error:
        text.append(f"\n\nNo explanation: {result.explain_error}", style="yellow")
    if result.skipped:
        text.append("\n\nSkipped:", style="bold")
        for s in result.skipped:
            text.append(f"\n  {s.ref}: {s.reason}", style="yellow")
    count = result.measurements
    text.append(f"\n\nSteps ({count} side-by-side measurement{'s' if count != 1 else ''}):",
                style="bold")
    for s in result.steps:
        if s.ratio is not None:
            text.append(f"\n  {s.ref}  ×{s.ratio:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]  ")
            text.append(s.verdict, style="bold red" if s.verdict == "bad" else "green")
        else:
            text.append(f"\n  {s.ref}  skipped", style="dim")
    if result.event_id is not None:
        text.append(f"\n\nRecorded as event {result.event_id} (e: the audit log; "
                    f"devtrack history {result.good.split('@')[0]}).", style="dim")
    return text


class BisectAnswerDialog(ReviewDialog[None]):
    """The bisect's answer; enter or esc closes it."""

    DEFAULT_CSS = """
    BisectAnswerDialog #bisect-answer { height: auto; max-height: 28; margin-bottom: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "cancel", "Close", priority=True),
    ]

    def __init__(self, result: BisectResult) -> None:
        super().__init__(lambda _request: None)
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        with Vertical(id="dialog"):
            yield Static(Text.assemble(("Bisect ", "bold"), (f"{r.good} … {r.bad}", "bold"),
                                       (f" on {r.profile}", "bold")), classes="dialog-title")
            with VerticalScroll(id="bisect-answer"):
                yield Static(answer_text(r), markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def request(self) -> None:
        return None
