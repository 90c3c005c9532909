"""How figures are written for people — latencies with three significant digits (µs below a
millisecond), sizes in B/KB/MB/GB — and how sizes people type (``--max-size 2GiB``) are read."""

from __future__ import annotations

import re

from devtrack.errors import UsageError


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


def format_bytes(size_bytes: int) -> str:
    """A size limit or a declared size as ``parse_size`` reads it back: exact when it can be
    (``1 GiB``, ``500 MB``, ``812 B``), else IEC units with one decimal (``58.2 TiB``)."""
    for factor, unit in ((2**40, "TiB"), (10**12, "TB"), (2**30, "GiB"), (10**9, "GB"),
                         (2**20, "MiB"), (10**6, "MB"), (2**10, "KiB"), (10**3, "KB")):
        if size_bytes >= factor and size_bytes % factor == 0 and size_bytes // factor < 10_000:
            return f"{size_bytes // factor} {unit}"
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str, option: str = "--max-size") -> int:
    """A size a user typed, in bytes: ``500MB`` (powers of 1000), ``2GiB`` (powers of 1024),
    or a plain number of bytes; UsageError naming ``option`` otherwise."""
    from devtrack.core.text import shown

    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise UsageError(f"bad {option} {shown(text)}: give a size such as 500MB, 2GiB or "
                         "1073741824 (bytes); units B, KB, MB, GB, TB (×1000) or KiB, MiB, "
                         "GiB, TiB (×1024)")
    size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise UsageError(f"bad {option} {shown(text)}: the size must be more than 0 bytes")
    return size
