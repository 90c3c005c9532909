"""Bounds of every numeric profile setting and the time a worker needs, for files and flags alike.

Profile validation (``core.profile``), the ``bench`` flags and the side-by-side re-measure
all read these, so a value a file may not hold cannot come in through a flag either, and
``execution.timeout_s`` is checked against one rule instead of being raised silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB_PER_TIB = 1024 * 1024


@dataclass(frozen=True)
class Bound:
    """The range a numeric setting may take: ``low <= v <= high`` (``low < v`` if open)."""

    low: float
    high: float
    low_open: bool = False  # the value must be greater than ``low``, not equal
    integer: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` (an int or finite float) is out of range, or None."""
        if self.low_open and value <= self.low:
            return f"must be > {_num(self.low)}, got {_short(value)}"
        if value < self.low:
            return f"must be >= {_num(self.low)}, got {_short(value)}"
        if value > self.high:
            return f"must be <= {_num(self.high)}, got {_short(value)}"
        return None

    def text(self) -> str:
        """``1..256`` or ``> 0 .. 3600`` for the README and messages."""
        low = f"> {_num(self.low)}" if self.low_open else _num(self.low)
        return f"{low} .. {_num(self.high)}"


# Chosen so any real device fits with room to spare, and nothing absurd gets through
# (threads = 100000 used to pass validation and spin a worker until its timeout).
BOUNDS: dict[str, Bound] = {
    "execution.threads": Bound(1, 256, integer=True),
    "execution.cpu_affinity": Bound(0, 4095, integer=True),  # each core id, unique
    "execution.memory_limit_mb": Bound(1, MIB_PER_TIB, integer=True),  # up to 1 TiB
    "execution.timeout_s": Bound(0, 86_400, low_open=True),  # a day; see worker_seconds
    "measurement.warmup_runs": Bound(0, 100_000, integer=True),
    "measurement.min_runs": Bound(1, 1_000_000, integer=True),
    "measurement.min_time_s": Bound(0, 3600),
    "measurement.max_time_s": Bound(0, 3600, low_open=True),
    "measurement.target_rel_ci": Bound(0, 1, low_open=True),  # a fraction below 1
    "measurement.cooldown_s": Bound(0, 600),
    "ssh.connect_timeout_s": Bound(0, 300, low_open=True),
    "ssh.lock_timeout_s": Bound(0, 86_400),  # 0: fail at once when the device is busy
    "adb.lock_timeout_s": Bound(0, 86_400),  # the same, for a phone
    "budgets.latency_p90_ms": Bound(0, 3_600_000),  # an hour
    "budgets.peak_memory_mb": Bound(0, MIB_PER_TIB),
    "budgets.model_size_mb": Bound(0, MIB_PER_TIB),
    "budgets.min_accuracy": Bound(0, 1),  # a fraction: 0.9 = 90%
    "budgets.max_latency_regression_pct": Bound(0, 1000),
    "budgets.max_accuracy_drop": Bound(0, 1),  # absolute: 0.01 = 1 point
}

# -- the time a worker needs -----------------------------------------------------------------
# A worker starts Python, imports the runtime, loads the model, runs it once, warms it up and
# writes its result besides the timed loop: at most 0.7 s for a tiny model and 1.4 s for a
# 60 MB one on the shared 2-core VM at load 6-8 (benchmarks/worker_startup.py). STARTUP_S
# leaves 3.5x that; a model that needs more fails its run as "timed out" in the phase it
# reached, never silently.
STARTUP_S = 5.0
# The timed loop stops at max_time_s, at worst one inference late; bench/worker.measure_loop
# stops it for good at max_time_s × 1.5 + 1 s, and the timeout must not cut in before that.
LOOP_OVERRUN = 1.5
LOOP_SLACK_S = 1.0
# A side-by-side repeat re-creates both sessions and warms both up before its loop.
PAIR_REPEAT_SETUP_S = 1.0


def worker_seconds(max_time_s: float, cooldown_s: float = 0.0) -> float:
    """The smallest ``execution.timeout_s`` a single measurement fits in (evaluation, when
    asked for, gets its own allowance on top: ``evaluation.EvalPlan.timeout_allowance_s``)."""
    return STARTUP_S + cooldown_s + max_time_s * LOOP_OVERRUN + LOOP_SLACK_S


def longest_max_time_s(timeout_s: float, cooldown_s: float = 0.0) -> float:
    """The longest ``max_time_s`` that fits in ``timeout_s`` (inverse of worker_seconds)."""
    return (timeout_s - STARTUP_S - cooldown_s - LOOP_SLACK_S) / LOOP_OVERRUN


def worker_need_text(max_time_s: float, cooldown_s: float = 0.0) -> str:
    """Why a measurement needs ``worker_seconds``, in a user's terms."""
    cool = f" + {_num(cooldown_s)} s cooldown" if cooldown_s else ""
    return (f"a worker needs up to {_secs(worker_seconds(max_time_s, cooldown_s))} s: "
            f"{_num(STARTUP_S)} s to start, import the runtime, load and warm up{cool} + "
            f"{_secs(max_time_s * LOOP_OVERRUN + LOOP_SLACK_S)} s for a {_num(max_time_s)} s "
            f"timed loop, which may overrun by half plus {_num(LOOP_SLACK_S)} s")


def pair_seconds(repeats: int, repeat_s: float) -> float:
    """The smallest ``execution.timeout_s`` a side-by-side measurement of ``repeats`` fits in."""
    return STARTUP_S + repeats * (repeat_s * LOOP_OVERRUN + PAIR_REPEAT_SETUP_S)


def most_pair_repeats(timeout_s: float, repeat_s: float) -> int:
    """The largest even number of side-by-side repeats that fits in ``timeout_s`` (may be < 4)."""
    n = math.floor((timeout_s - STARTUP_S) / (repeat_s * LOOP_OVERRUN + PAIR_REPEAT_SETUP_S))
    return max(0, n - n % 2)


def pair_need_text(repeats: int, repeat_s: float) -> str:
    """Why a side-by-side measurement needs ``pair_seconds``, in a user's terms."""
    per = repeat_s * LOOP_OVERRUN + PAIR_REPEAT_SETUP_S
    return (f"{repeats} repeats of {_num(repeat_s)} s need up to "
            f"{_secs(pair_seconds(repeats, repeat_s))} s ({_num(STARTUP_S)} s to start + "
            f"{_secs(per)} s a repeat: both sessions re-created and warmed up, a loop that "
            "may overrun by half)")


def _num(value: float) -> str:
    """1048576 rather than 1.04858e+06; 0.5 as it is."""
    if isinstance(value, int) or (abs(value) < 1e15 and value == int(value)):
        return str(int(value))
    return f"{value:.12g}"


def _short(value: float) -> str:
    text = _num(value)  # an int from TOML may have thousands of digits
    return text if len(text) <= 24 else text[:21] + "..."


def _secs(value: float) -> str:
    """Seconds rounded up to one decimal, so a suggested minimum always fits."""
    return f"{math.ceil(value * 10 - 1e-9) / 10:g}"
