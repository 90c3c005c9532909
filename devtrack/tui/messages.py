"""Small dataclasses the app broadcasts: benchmark progress and "the data changed"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BenchLane:
    """One device's measurement running now (devices measure in parallel)."""

    device: str  # "local", "ssh://pi@board", …
    label: str  # "kws@1.1.0 on ci-host"
    phase: str = "starting"
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class BenchUpdate:
    """Where a background benchmark is: the (release, profile) measurements of ``total``
    running now (``lanes``, one per device) and how many have finished."""

    ref: str
    index: int  # 1-based number of the measurement started last
    total: int
    label: str  # "kws@1.1.0 on ci-host"
    phase: str = ""  # the worker's phase: import, load, measure, ...
    elapsed_s: float = 0.0
    done: bool = False
    results: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    skipped: tuple[str, ...] = ()
    lanes: tuple[BenchLane, ...] = ()
    completed: int = 0  # measurements finished (stored)
    kind: str = "bench"  # what runs: "bench", or "bisect" (tui/bisect_job.py)

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        return max(0.0, self.completed / self.total) if self.total else 0.0


@dataclass(frozen=True)
class DataChanged:
    """Something was written (a status, a deployment, a run): visible views reload."""

    what: str
    refs: tuple[str, ...] = field(default_factory=tuple)
