"""Presentation helpers: numbers, statuses and badges as rich ``Text`` (never markup)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from devtrack.core.audit import payload_summary
from devtrack.core.budgets import budget_line as budget_line
from devtrack.core.text import printable
from devtrack.core.units import format_latency, format_number, format_size

STATUS_STYLES = {
    "candidate": "yellow",
    "approved": "green",
    "rejected": "red",
    "yanked": "magenta",
}
BUDGET_STYLES = {"pass": "green", "fail": "bold red", "missing": "yellow", "none": "dim",
                 "no run": "dim"}
RUN_STYLES = {"ok": "green", "failed": "red", "aborted": "yellow"}


def literal(value: Any) -> Text:
    """User text exactly as typed: ``[red]`` stays ``[red]``; control characters escaped."""
    return Text("" if value is None else printable(str(value), keep_newlines=True))


def ms(value: float | None) -> str:
    """Milliseconds with about four significant digits: 123.4, 12.34, 1.234, 0.00712."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}" if value >= 1 else f"{value:#.3g}"


def figure(ms_value: float | None, scale: float = 1.0) -> str:
    """A latency in a column's unit (``scale`` 1000 for µs), three significant digits."""
    return format_number(None if ms_value is None else ms_value * scale)


def latency(ms_value: float | None) -> str:
    """A latency with its unit: ``17.6 µs``, ``1.08 ms``."""
    return format_latency(ms_value)


def mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def size(size_bytes: int) -> str:
    return format_size(size_bytes)


def short_time(iso: str | None) -> str:
    return "-" if not iso else iso.replace("T", " ")[:16]


def first_line(text: str | None, width: int = 60) -> str:
    stripped = (text or "").strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, ""))


def budget(value: str) -> Text:
    return Text(value, style=BUDGET_STYLES.get(value, ""))


def run_status(value: str | None) -> Text:
    if value is None:
        return Text("not measured", style="dim")
    return Text(value, style=RUN_STYLES.get(value, ""))


def pct_change(value: float | None, limit: float, higher_is_worse: bool = True) -> Text:
    """``+3.1%`` coloured red beyond ``limit`` in the bad direction, green beyond it the other."""
    if value is None:
        return Text("-", style="dim")
    bad = value > limit if higher_is_worse else value < -limit
    good = value < -limit if higher_is_worse else value > limit
    return Text(f"{value:+.1f}%", style="bold red" if bad else "green" if good else "")


def badges(profiles: tuple[str, ...] | list[str]) -> Text:
    text = Text()
    for i, name in enumerate(profiles):
        if i:
            text.append(" ")
        text.append(f"▲{name}", style="bold cyan")
    return text


def join_text(*parts: Text | str, sep: str = " ") -> Text:
    out = Text()
    for i, part in enumerate(p for p in parts if p):
        if i:
            out.append(sep)
        out.append(part if isinstance(part, Text) else Text(part))
    return out




def payload_details(payload: dict[str, Any]) -> str:
    """An event's payload as ``key=value, …`` (see :func:`payload_summary`)."""
    return payload_summary(payload)
