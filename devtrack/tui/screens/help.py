"""``?``: every key binding active on the screen below, grouped by where it applies."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GENERAL = (
    ("?", "this help (any screen)"),
    ("ctrl+p", "command palette: every screen and action by name"),
    ("esc", "back, or close a dialog / clear the filter"),
    ("tab / shift+tab", "move focus between panes and fields"),
    ("j / k, ↑ / ↓", "move in lists and tables"),
    ("enter", "open the highlighted row / confirm a dialog"),
    ("mouse", "click rows, headers (sort), tabs and buttons; wheel scrolls"),
)


# Where a focused widget's keys apply, in words a user knows (first match along the MRO).
WIDGET_GROUPS = {
    "NavTable": "In tables",
    "ModelList": "In the model list",
    "FilterBar": "In the filter box",
    "Select": "In drop-down lists",
    "SelectOverlay": "In drop-down lists",
    "Input": "In text fields",
    "TextArea": "In text fields",
    "Button": "On buttons",
    "Checkbox": "On check boxes",
    "OptionList": "In lists",
    "TabbedContent": "In tabs",
    "Tabs": "In tabs",
}


_EVERY_SCREEN_ACTIONS = frozenset({"app.focus_next", "app.focus_previous", "screen.copy_text"})


def _group_name(node: Any) -> str:
    from textual.app import App

    if isinstance(node, App):
        return "Everywhere"
    if isinstance(node, Screen):
        return "This screen"
    for cls in type(node).__mro__:
        if cls.__name__ in WIDGET_GROUPS:
            return WIDGET_GROUPS[cls.__name__]
    return "In the focused field"


def bindings_table(screen: Screen[Any]) -> Table:
    """Every active binding of ``screen`` (focused widget, screen, app) with its description."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True, width=16)
    table.add_column("action")
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        description = (binding.tooltip or binding.description
                       or binding.action.replace("_", " "))
        display = binding.key_display or screen.app.get_key_display(binding)
        group = _group_name(active.node)
        if group == "This screen" and binding.action in _EVERY_SCREEN_ACTIONS:
            group = "Everywhere"  # Textual's own screen keys (focus, copy), not this screen's
        groups.setdefault(group, []).append((display, description))
        del key
    active_actions = {active.binding.action for active in screen.active_bindings.values()}
    for binding in getattr(screen, "BINDINGS", ()):  # offered on some rows only: say where
        when = getattr(screen, "HELP_WHEN", {}).get(getattr(binding, "action", None))
        if when and binding.action not in active_actions:
            display = binding.key_display or screen.app.get_key_display(binding)
            groups.setdefault("This screen", []).append(
                (display, f"{binding.tooltip or binding.description} ({when})"))
    order = ["This screen", *sorted(g for g in groups if g not in ("This screen", "Everywhere")),
             "Everywhere"]
    shown: set[tuple[str, str]] = set()  # a key bound at several levels is listed once
    for group in order:
        if group not in groups:
            continue
        keys_of: dict[str, list[str]] = {}  # one line per action: "^c, super+c"
        for display, description in groups[group]:
            if (display, description) in shown:
                continue
            shown.add((display, description))
            keys = keys_of.setdefault(description, [])
            if display not in keys:
                keys.append(display)
        if not keys_of:
            continue
        table.add_row(Text(group, style="bold underline"), "")
        for description, keys in keys_of.items():
            table.add_row(", ".join(keys), Text(description))
        table.add_row("", "")
    table.add_row(Text("General", style="bold underline"), "")
    for key, description in GENERAL:
        table.add_row(key, description)
    return table


class HelpScreen(ModalScreen[None]):
    """A scrollable list of bindings; ``esc``, ``q`` or ``?`` closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        title = getattr(self.under, "HELP_TITLE", None) or type(self.under).__name__
        with Vertical(id="help-box"):
            yield Static(Text(f"Keys: {title}", style="bold"), id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(bindings_table(self.under), id="help-body")
            yield Static(Text("esc, q or ? closes", style="dim"), id="help-foot")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).scroll_up()
