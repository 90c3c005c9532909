"""Roll a model back on a profile: the proposal, every candidate with its reasons, a reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Select, Static

from devtrack.tui.screens.dialog_base import ReviewDialog, buttons_row, error_line
from devtrack.tui.widgets.nav_table import Column, NavTable, Row
from devtrack.tui.widgets.reason_field import ReasonField


@dataclass(frozen=True)
class RollbackRequest:
    model: str
    profile: str
    to: str | None  # None: the proposed release
    reason: str


@dataclass(frozen=True)
class PlanView:
    """What the dialog shows for one profile: the library's plan or why there is none."""

    plan: Any | None  # devtrack.core.rollback.RollbackPlan
    error: str | None = None


COLUMNS = (
    Column("version", "version"),
    Column("status", "status"),
    Column("verdict", "verdict"),
    Column("reasons", "why (not)"),
)


def plan_rows(plan: Any) -> list[Row]:
    rows = []
    notes = dict(n.split(": ", 1) for n in getattr(plan, "notes", ()))  # "VERSION: note"
    for a in plan.ranked:
        if a.chosen:
            verdict = Text("✓ proposed", style="bold green")
        elif a.eligible:
            verdict = Text("eligible", style="green")
        else:
            verdict = Text("passed over", style="dim")
        reasons = "; ".join([*a.reasons, *getattr(a, "caveats", ())]) or "qualifies"
        if a.version in notes:
            reasons += f" ({notes[a.version]})"
        rows.append(Row(a.version, [Text(a.version, style="bold" if a.chosen else ""),
                                    Text(a.status), verdict, Text(reasons)]))
    return rows


class RollbackDialog(ReviewDialog[object]):
    """The rollback proposal for a profile; pick another eligible release or confirm."""

    def __init__(self, model: str, profiles: list[str], initial: str | None,
                 plan_for: Callable[[str], PlanView],
                 perform: Callable[[RollbackRequest], object]) -> None:
        super().__init__(perform)
        self.model = model
        self.profiles = profiles
        self.initial = initial if initial in profiles else (profiles[0] if profiles else None)
        self._plan_for = plan_for
        self.view: PlanView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text.assemble(("Roll back ", "bold"), (self.model, "bold")),
                         classes="dialog-title")
            yield Select[str]([(p, p) for p in self.profiles], value=self.initial or Select.NULL,
                              allow_blank=self.initial is None, id="rollback-profile",
                              prompt="profile (where the model is deployed)", compact=True)
            yield Static("", id="plan-summary", classes="dialog-note", markup=False)
            yield NavTable(id="candidates")
            yield ReasonField()
            yield error_line()
            with Horizontal(classes="dialog-buttons"):
                yield from buttons_row("Roll back", "error")

    def on_mount(self) -> None:
        self.query_one(NavTable).set_columns(COLUMNS)
        self._load()
        self.query_one(ReasonField).input.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._load()

    @property
    def profile(self) -> str | None:
        value = self.query_one("#rollback-profile", Select).value
        return value if isinstance(value, str) else None

    def _load(self) -> None:
        profile = self.profile
        summary = Text()
        table = self.query_one(NavTable)
        if profile is None:
            self.view = None
            summary.append(f"{self.model} is not deployed anywhere: nothing to roll back.",
                           style="yellow")
            table.set_rows([])
        else:
            self.view = self._plan_for(profile)
            plan = self.view.plan
            if plan is not None:
                summary.append(f"Live on {profile}: {plan.current}. ")
                if plan.target:
                    summary.append(f"Proposed: {plan.target}", style="bold green")
                    summary.append(" (the most recent earlier release that qualifies). Pick "
                                   "another eligible row to choose it instead.")
                else:
                    summary.append(plan.refusal or "No release qualifies.", style="red")
                table.set_rows(plan_rows(plan))
                if plan.target:
                    table.select_key(plan.target)
            else:
                summary.append(self.view.error or "", style="red")
                table.set_rows([])
        self.query_one("#plan-summary", Static).update(summary)

    @property
    def chosen(self) -> str | None:
        """The highlighted release when it is eligible and not the proposal, else None."""
        if self.view is None or self.view.plan is None:
            return None
        key = self.query_one(NavTable).current_key
        plan = self.view.plan
        if key is None or key == plan.target:
            return None
        assessment = next((a for a in plan.ranked if a.version == key), None)
        return key if assessment is not None and assessment.eligible else None

    def on_nav_table_row_highlighted(self, event: NavTable.RowHighlighted) -> None:
        target = self.chosen or (self.view.plan.target if self.view and self.view.plan
                                 else None)
        self.query_one("#ok").label = (  # type: ignore[attr-defined]
            f"Roll back to {target}" if target else "Roll back")

    def on_nav_table_row_selected(self, event: NavTable.RowSelected) -> None:
        self.query_one(ReasonField).input.focus()

    def request(self) -> RollbackRequest | None:
        profile = self.profile
        if profile is None or self.view is None or self.view.plan is None:
            self.show_error("There is nothing to roll back here.")
            return None
        plan = self.view.plan
        to = self.chosen
        if to is None and plan.target is None:
            self.show_error(plan.refusal or "No release qualifies for a rollback.")
            return None
        reason = self.reason()
        if reason is None:
            return None
        return RollbackRequest(self.model, profile, to, reason)
