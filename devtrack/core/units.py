"""How figures are written for people: latencies with three significant digits (µs below a
millisecond), sizes in B/KB/MB/GB."""

from __future__ import annotations


def format_number(value: float | None) -> str:
    """Three significant digits, trailing zeros kept so a column reads evenly: 0.00921,
    1.08, 18.0, 123; values from 1000 up as integers."""
    if value is None:
        return "-"
    if abs(value) >= 999.5 or value == 0:
        return f"{value:.0f}"
    return f"{value:#.3g}".rstrip(".")


def format_latency(ms: float | None) -> str:
    """One latency with its unit: ``9.21 µs``, ``1.08 ms``."""
    if ms is None:
        return "-"
    return f"{format_number(ms * 1000)} µs" if ms < 1.0 else f"{format_number(ms)} ms"


def latency_unit(values: list[float | None]) -> tuple[str, float]:
    """The unit for a column of latencies in ms and the factor to show them in it: µs when
    every known figure is below 1 ms (short, exact columns), else ms."""
    known = [v for v in values if v is not None]
    return ("µs", 1000.0) if known and max(known) < 1.0 else ("ms", 1.0)


def format_size(size_bytes: int) -> str:
    """``812 B``, ``299.6 KB``, ``1.1 MB``: binary units, one decimal."""
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
