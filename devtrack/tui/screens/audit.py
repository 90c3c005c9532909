"""The audit log: every change, newest first, filtered by model, kind and free text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Select, Static
from textual.worker import Worker, WorkerState

from devtrack.overview import audit_events, event_kinds, list_model_overview
from devtrack.tui import format as fmt
from devtrack.tui.messages import DataChanged
from devtrack.tui.widgets.app_footer import AppFooter
from devtrack.tui.widgets.bench_bar import BenchBar
from devtrack.tui.widgets.filter_bar import FilterBar
from devtrack.tui.widgets.nav_table import Column, NavTable, Row

if TYPE_CHECKING:
    from devtrack.auditing import AuditResult
    from devtrack.tui.app import DevtrackApp

ANY = "*"
KIND_STYLES = {"register": "cyan", "bench": "blue", "promote": "yellow", "deploy": "green",
               "rollback": "magenta", "check": "white", "compare": "white", "notes": "white",
               "explain": "white", "bisect": "red"}
COLUMNS = (
    Column("id", "#", sort=lambda v: v, justify="right"),
    Column("time", "time", sort=lambda v: v),
    Column("kind", "kind", sort=lambda v: v),
    Column("release", "release", sort=lambda v: v),
    Column("actor", "actor", sort=lambda v: v),
    Column("reason", "reason"),
    Column("details", "details"),
)


def _details(payload: dict[str, Any], event: dict[str, Any] | None = None) -> str:
    """The payload on one line; an explain's or bisect's answer in words (as ``log``)."""
    if event is not None and event["kind"] in ("explain", "bisect") and isinstance(payload,
                                                                                   dict):
        from devtrack.investigations import investigation_summary

        return investigation_summary(event["kind"], event["model"], event["version"],
                                     payload)
    return fmt.payload_details(payload)


def event_row(event: dict[str, Any]) -> Row:
    ref = (f"{event['model']}@{event['version']}" if event["version"]
           else (event["model"] or ""))
    payload = json.loads(event["payload"]) if event["payload"] else {}
    details = _details(payload, event)
    cells: list[Text | str] = [
        Text(str(event["id"]), justify="right"),
        fmt.short_time(event["ts"]),
        Text(event["kind"], style=KIND_STYLES.get(event["kind"], "")),
        fmt.literal(ref),
        fmt.literal(event["actor"]),
        fmt.literal(fmt.first_line(event["reason"] or "", 40)),
        fmt.literal(fmt.first_line(details, 60)),
    ]
    search = " ".join([ref, event["kind"], event["actor"], event["reason"] or "", details])
    return Row(str(event["id"]), cells, {"id": event["id"], "time": event["ts"],
                                         "kind": event["kind"], "release": ref,
                                         "actor": event["actor"]}, search)


def event_detail(event: dict[str, Any] | None) -> Text:
    if event is None:
        return Text("")
    payload = json.loads(event["payload"]) if event["payload"] else {}
    text = Text()
    text.append(f"#{event['id']} {event['kind']}", style="bold")
    text.append(f"  {event['ts']} by ")
    text.append_text(fmt.literal(event["actor"]))
    text.append(f"  hash {event['hash'][:12]}", style="dim")
    text.append("\nreason: ", style="bold")
    text.append_text(fmt.literal(event["reason"] or "-"))
    text.append("\n")
    if event["kind"] in ("explain", "bisect"):
        text.append_text(fmt.literal(_details(payload, event)))
        text.append("\n")
    text.append_text(fmt.literal(_details(payload) or "(no details)"))
    return text


class AuditScreen(Screen[None]):
    """Model and kind selectors over a table of events; the highlighted one in full below."""

    CSS_PATH = "audit.tcss"
    HELP_TITLE = "audit log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("m", "choose('#audit-model')", "Model"),
        Binding("f", "choose('#audit-kind')", "Kind"),
        Binding("s", "sort", "Sort"),
        Binding("v", "verify", "Verify", tooltip="Verify the trail (devtrack audit verify): "
                "its hash chain, and every table against it"),
    ]

    def __init__(self, model: str | None = None, kind: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self._events: dict[str, dict[str, Any]] = {}
        self.verdict: Text | None = None  # the last verification, shown after the count
        self._count = Text("")

    @property
    def dt_app(self) -> DevtrackApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        ws = self.dt_app.ws
        models = [(m.name, m.name) for m in list_model_overview(ws)]
        kinds = [(k, k) for k in event_kinds(ws)]
        yield Header()
        with Horizontal(id="audit-bar"):
            yield Static("Model", classes="bar-label")
            yield Select[str]([("every model", ANY), *models], id="audit-model", compact=True,
                              allow_blank=False,
                              value=self.model if self.model in dict(models) else ANY)
            yield Static("Kind", classes="bar-label")
            yield Select[str]([("every kind", ANY), *kinds], id="audit-kind", compact=True,
                              allow_blank=False,
                              value=self.kind if self.kind in dict(kinds) else ANY)
            yield Static("", id="audit-count", markup=False)
        yield FilterBar(id="audit-filter")
        yield NavTable(id="audit-table")
        yield Static("", id="audit-detail", markup=False)
        yield BenchBar()
        yield AppFooter()

    def on_mount(self) -> None:
        self.title = "Audit log"
        self.query_one(NavTable).set_columns(COLUMNS)
        self.dt_app.data_signal.subscribe(self, self.on_data_changed)
        self.load()
        self.query_one(NavTable).focus()

    def load(self) -> None:
        model = self.model if self.model != ANY else None
        kind = self.kind if self.kind != ANY else None
        events = audit_events(self.dt_app.ws, model=model, kind=kind)
        self._events = {str(e["id"]): e for e in events}
        table = self.query_one(NavTable)
        table.set_rows([event_row(e) for e in events])
        self._count = Text(f"{len(events)} events")
        if not events:
            self._count.append(" (none match)", style="yellow")
        self._show_count()
        self._show_detail()

    def _show_count(self) -> None:
        count = self._count.copy()
        if self.verdict is not None:
            count.append(" · ")
            count.append_text(self.verdict)
        self.query_one("#audit-count", Static).update(count)

    # -- verification (in a thread: it hashes every event and every run's samples) ----------

    def action_verify(self) -> None:
        self.verdict = Text("verifying…", style="dim")
        self._show_count()
        self._verify()

    @work(thread=True, exclusive=True, group="audit-verify", exit_on_error=False)
    def _verify(self) -> AuditResult:
        from devtrack.auditing import verify_audit
        from devtrack.workspace import open_workspace

        with open_workspace(self.dt_app.root) as ws:
            return verify_audit(ws)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "audit-verify":
            return
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            result = event.worker.result
            problems = ([result.problem.message] if result.problem is not None
                        else [p.message for p in result.state])
            if result.files is not None:  # the stored bytes, rehashed
                problems += [p.message for p in result.files.problems]
            if not problems:
                self.verdict = Text("✓ verified", style="green")
                self.notify(f"Audit trail intact: {result.events} events; every table "
                            "agrees with it.", timeout=4)
            else:
                self.verdict = Text(f"✗ {len(problems)} problem"
                                    f"{'s' if len(problems) != 1 else ''}", style="bold red")
                title = ("Audit trail broken" if result.problem is not None
                         else "Tables disagree with the audit trail")
                self.notify("\n".join(problems[:5]) + (
                    f"\n… {len(problems) - 5} more: devtrack audit verify" if len(problems) > 5
                    else ""), title=title, severity="error", timeout=15)
        elif event.state == WorkerState.ERROR:
            self.verdict = Text(f"could not verify: {event.worker.error}", style="red")
        else:
            return
        self._show_count()

    def _show_detail(self) -> None:
        key = self.query_one(NavTable).current_key
        event = self._events.get(key) if key is not None else None
        self.query_one("#audit-detail", Static).update(event_detail(event))

    def on_data_changed(self, change: DataChanged) -> None:
        self.load()

    def on_select_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else ANY
        if event.select.id == "audit-model" and value != (self.model or ANY):
            self.model = value
            self.load()
        elif event.select.id == "audit-kind" and value != (self.kind or ANY):
            self.kind = value
            self.load()

    def on_nav_table_row_highlighted(self, event: NavTable.RowHighlighted) -> None:
        self._show_detail()

    def on_filter_bar_updated(self, event: FilterBar.Updated) -> None:
        self.query_one(NavTable).apply_filter(event.text)
        self._show_detail()

    def on_filter_bar_closed(self, event: FilterBar.Closed) -> None:
        self.query_one(NavTable).focus()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_choose(self, selector: str) -> None:
        select = self.query_one(selector, Select)
        select.focus()
        select.expanded = True

    def action_sort(self) -> None:
        label = self.query_one(NavTable).cycle_sort()
        self.notify(f"Sorted by {label}", timeout=1.5)

    def action_back(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.display:
            bar.action_clear_and_close()
            return
        self.app.pop_screen()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Filter events", "/", self.action_filter)
        yield SystemCommand("Verify the audit trail", "v: hash chain and tables",
                            self.action_verify)
        yield SystemCommand("Back", "esc", self.action_back)
