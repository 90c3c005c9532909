"""How figures are written for people."""

from __future__ import annotations

import pytest

from devtrack.core.units import format_latency, format_number, latency_unit


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (0.0, "0"), (0.00921, "0.00921"), (0.5, "0.500"), (1.0, "1.00"),
    (9.58, "9.58"), (18.0, "18.0"), (123.4, "123"), (999.4, "999"), (999.9, "1000"),
    (1234.5, "1234"), (-3.0, "-3.00"),
])
def test_three_significant_digits_with_trailing_zeros_kept(value: float | None,
                                                           text: str) -> None:
    assert format_number(value) == text


def test_latencies_below_a_millisecond_are_written_in_microseconds() -> None:
    assert format_latency(0.0176) == "17.6 µs"
    assert format_latency(1.08) == "1.08 ms"
    assert format_latency(None) == "-"


def test_a_column_uses_microseconds_only_when_every_figure_is_below_a_millisecond() -> None:
    assert latency_unit([0.0176, 0.9, None]) == ("µs", 1000.0)
    assert latency_unit([0.0176, 1.2]) == ("ms", 1.0)
    assert latency_unit([None]) == ("ms", 1.0)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (812, "812 B"), (1024, "1.0 KB"), (306_790, "299.6 KB"),
    (1_204_881, "1.1 MB"), (5 * 1024**3, "5.0 GB"), (3 * 1024**4, "3072.0 GB"),
])
def test_sizes_in_binary_units_with_one_decimal(size: int, text: str) -> None:
    from devtrack.core.units import format_size

    assert format_size(size) == text
