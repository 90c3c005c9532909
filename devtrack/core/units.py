"""How latencies are written for people: three significant digits, µs below a millisecond."""

from __future__ import annotations


def format_number(value: float | None) -> str:
    """Three significant digits: 0.00921, 1.08, 12.3, 123; large values as integers."""
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def format_latency(ms: float | None) -> str:
    """One latency with its unit: ``9.21 µs``, ``1.08 ms``."""
    if ms is None:
        return "-"
    return f"{format_number(ms * 1000)} µs" if ms < 1.0 else f"{format_number(ms)} ms"
