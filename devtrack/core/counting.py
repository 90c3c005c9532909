"""The one rule for the run whose figures count for (release, profile), as a pure function.

The run that counts is the newest ok run whose conditions match the profile now. Runs under
other conditions (another thread count, a profile edited since) never lend their figures;
the views say when newer ones exist, and a release with no run under the current
conditions is *not measured* there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R", bound=Mapping[str, Any])

OK = "ok"
FAILED = "failed"
# What every view says when newer runs than the one its figures come from used other
# conditions (the review app said it first).
NEWER_RUNS_NOTE = ("figures from the last run under the profile's conditions; newer runs "
                   "used other conditions")


@dataclass(frozen=True)
class RunChoice(Generic[R]):
    """The run that counts (or None: not measured) and what else exists on the profile."""

    run: R | None
    newer_other: int = 0  # ok runs under other conditions newer than ``run`` (0 if None)
    other: int = 0  # ok runs under other conditions, at all
    failed: R | None = None  # the newest failed run under these conditions newer than ``run``
    newest: R | None = None  # the newest run of any status and conditions
    total: int = 0  # runs on the profile, any status and conditions

    @property
    def measured(self) -> bool:
        return self.run is not None

    def newer_runs_note(self) -> str | None:
        """The one sentence every view adds when newer runs used other conditions."""
        return NEWER_RUNS_NOTE if self.run is not None and self.newer_other else None

    def other_runs_note(self) -> str | None:
        """``2 ok runs under other conditions do not count``, when not measured."""
        return other_runs_note(self.other) if self.run is None else None

    def conditions_note(self) -> str | None:
        """What a view says of runs under other conditions (newer ones, or the only ones)."""
        return self.newer_runs_note() or (
            not_measured_note(self.other) if self.run is None and self.other else None)


def other_runs_note(other: int) -> str | None:
    """``2 ok runs under other conditions do not count`` (None for none)."""
    if not other:
        return None
    return (f"{other} ok run under other conditions does not count" if other == 1
            else f"{other} ok runs under other conditions do not count")


def not_measured_note(other: int) -> str:
    """Why a release has no figures on a profile it has ok runs on."""
    note = other_runs_note(other)
    return "not measured under the profile's current conditions" + (
        f" ({note})" if note else "")


def choose_run(runs: Iterable[R], conditions_hash: str | None) -> RunChoice[R]:
    """The run that counts among one release's runs on one profile (any order).

    Each run needs ``id``, ``status`` and ``conditions_hash``. ``conditions_hash`` None means
    the profile is no longer defined: its newest ok run counts, whatever its conditions.
    """
    ordered = sorted(runs, key=lambda r: int(r["id"]), reverse=True)
    newest = ordered[0] if ordered else None

    def matches(run: R) -> bool:
        return conditions_hash is None or run["conditions_hash"] == conditions_hash

    chosen = next((r for r in ordered if r["status"] == OK and matches(r)), None)
    cut = int(chosen["id"]) if chosen is not None else -1
    other = [r for r in ordered if r["status"] == OK and not matches(r)]
    failed = next((r for r in ordered if r["status"] == FAILED and matches(r)
                   and int(r["id"]) > cut), None)
    newer = sum(1 for r in other if int(r["id"]) > cut) if chosen is not None else 0
    return RunChoice(chosen, newer, len(other), failed, newest, len(ordered))


def measure_command(refs: Iterable[str], profile: str) -> str:
    """``devtrack bench kws@1.1 --profile ci-host``: what measures the missing runs."""
    return f"devtrack bench {' '.join(refs)} --profile {profile}"
