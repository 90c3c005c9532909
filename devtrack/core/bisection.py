"""The bisect search: which release on a line to measure next, and when the answer is known.

Pure: positions 0 … n-1 on the path from the good release (0) to the bad one (n-1); the
caller measures each asked position against the good release and records it as bad (its
change passes the threshold), good, or skipped (cannot be measured, like `git bisect skip`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GOOD, BAD, SKIP = "good", "bad", "skip"


def most_measurements(size: int) -> int:
    """How many measurements a search over ``size`` positions takes at most when nothing is
    skipped: the bad end, then halving the ``size - 2`` positions in between."""
    if size < 2:
        raise ValueError(f"a bisect needs at least two releases, got {size}")
    return 1 + math.ceil(math.log2(size - 1))


@dataclass
class BisectSearch:
    """Binary search for the first bad position; the bad end is measured first (to confirm)."""

    size: int  # positions on the path, good (0) and bad (size - 1) included
    marks: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"a bisect needs at least two releases, got {self.size}")
        self.marks.setdefault(0, GOOD)

    @property
    def last_good(self) -> int:
        return max(i for i, m in self.marks.items() if m == GOOD)

    @property
    def first_bad(self) -> int | None:
        bad = [i for i, m in self.marks.items() if m == BAD and i > self.last_good]
        return min(bad) if bad else None

    def untested_between(self) -> list[int]:
        """Positions strictly between the last good and the first bad, not yet marked."""
        high = self.first_bad
        if high is None:
            return []
        return [i for i in range(self.last_good + 1, high) if i not in self.marks]

    def skipped_between(self) -> list[int]:
        """Skipped positions between the last good and the first bad: the answer may be one
        of them."""
        high = self.first_bad
        if high is None:
            return []
        return [i for i in range(self.last_good + 1, high) if self.marks.get(i) == SKIP]

    def next_position(self) -> int | None:
        """The position to measure next, or None when the search is over."""
        end = self.size - 1
        if end not in self.marks:
            return end
        if self.marks[end] == SKIP or self.first_bad is None:
            return None  # the bad end is not bad (or cannot be run): nothing to search
        untested = self.untested_between()
        if not untested:
            return None
        # the middle of the interval, moved to the nearest position not yet tried
        middle = (self.last_good + self.first_bad) / 2.0
        return min(untested, key=lambda i: (abs(i - middle), i))

    def mark(self, position: int, verdict: str) -> None:
        if verdict not in (GOOD, BAD, SKIP):
            raise ValueError(f"unknown bisect verdict {verdict!r}")
        if not 0 < position < self.size:
            raise ValueError(f"position {position} is outside 1..{self.size - 1}")
        self.marks[position] = verdict
