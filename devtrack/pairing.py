"""Side-by-side re-measurement of two releases: both in one isolated worker, interleaved.

Stored runs taken at different times differ by far more than a gate must catch (ARCHITECTURE.md,
"Measurement"), so verdicts that decide come from here: short blocks of inferences of both
models alternate inside one worker, with block order and session-creation order alternated
across repeats. Repeats are added until the ratio's CI decides against the latency limit
or a cap is reached (``core/sequential.py``: looks fixed in advance, alpha spent over them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from devtrack.benchmarking import BenchOverrides, merged_specs
from devtrack.core.adb_target import is_adb
from devtrack.core.limits import most_pair_repeats, pair_need_text, pair_seconds
from devtrack.core.policy import latency_limit_pct
from devtrack.core.profile import MAX_REPEATS, Profile
from devtrack.core.release import Release
from devtrack.core.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_REPEATS,
    UNDECIDED,
    Look,
    SequentialPlan,
    order_balanced_log_ratio,
    run_sequence,
)
from devtrack.core.significance import paired_ratio_summary
from devtrack.errors import UsageError
from devtrack.workspace import Workspace

Progress = Callable[[str], None]

CLOCK_CPU, CLOCK_WALL = "cpu", "wall"  # as bench/interleaved.py names them
CLOCKS = (CLOCK_CPU, CLOCK_WALL)
DEFAULT_REPEAT_S = 0.5  # the grain (see fit_grain); 0.3 s left 2 threads under load undecided more


def check_runs_formats(profile: Profile, *releases: Release) -> None:
    for release in releases:
        if not profile.runs_format(release.format):
            raise UsageError(f"profile {profile.name!r} does not run {release.format} models "
                             f"({release.ref}); its formats: {', '.join(profile.formats)}")


@dataclass(frozen=True)
class RerunSettings:
    """How a side-by-side re-measurement runs (ARCHITECTURE.md, "Measurement").

    Sequential (the default): repeats are added until a look of
    :class:`~devtrack.core.sequential.SequentialPlan` decides against the latency limit, at
    most ``repeats`` of them (the cap). ``sequential=False`` runs exactly ``repeats``. Each
    repeat re-creates both sessions, alternating which is created and run first, so the
    count is even. ``repeat_s`` (default 0.5 s) is each repeat's length; ``block_size``
    inferences per alternation, by default sized by the worker from its warm-up. ``clock``
    "cpu" (default) judges the ratio of the worker's CPU time per block, "wall" the
    wall-clock one (see ``bench/interleaved.py``: on a loaded machine waiting for a core
    swamps the wall clock). ``cap_given`` False: ``repeats`` is the default cap, which
    :func:`effective_settings` trims to what fits in the profile's timeout.
    """

    repeats: int = DEFAULT_MAX_REPEATS
    repeat_s: float | None = None
    block_size: int | None = None
    sequential: bool = True
    alpha: float = DEFAULT_ALPHA
    clock: str = CLOCK_CPU
    cap_given: bool = True

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise UsageError(f"clock must be {' or '.join(CLOCKS)}, got {self.clock!r}")
        if self.repeats < 4 or self.repeats % 2 or self.repeats > MAX_REPEATS:
            raise UsageError(f"repeats must be an even number from 4 to {MAX_REPEATS} (the "
                             f"order alternates), got {self.repeats}")
        if self.repeat_s is not None and self.repeat_s <= 0:
            raise UsageError(f"repeat_s must be > 0, got {self.repeat_s}")
        if self.block_size is not None and self.block_size < 1:
            raise UsageError(f"block_size must be >= 1, got {self.block_size}")
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"alpha must be between 0 and 1, got {self.alpha}")


@dataclass
class PairedResult:
    """B/A from one interleaved worker, summarised over its repeats (the independent units).

    Sequential: the ratio and CI of the last look (``looks``), the creation-order-balanced
    geometric mean of the repeat ratios with a t interval at that look's spent level.
    Fixed repeats: the median of the repeat ratios with its order-statistic CI. Block
    ratios within a repeat are correlated, so they are kept but not counted as units.
    """

    status: str  # "ok" | "failed" | "aborted"
    error: str | None
    ratio: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    repeat_ratios: list[float] = field(default_factory=list)
    block_ratios: np.ndarray = field(default_factory=lambda: np.zeros(0))
    a_ms: float | None = None  # median of each side's samples
    b_ms: float | None = None
    block_size: int = 0
    repeats: int = 0
    repeat_s: float = 0.0
    wall_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    runtime: str | None = None
    plan: SequentialPlan | None = None
    looks: list[Look] = field(default_factory=list)
    clock: str = CLOCK_WALL  # which ratios ``repeat_ratios`` holds and the verdict judges
    wall_repeat_ratios: list[float] = field(default_factory=list)

    def clock_note(self) -> str | None:
        """What a CPU-time verdict was judged on, with the wall-clock ratio beside it."""
        if self.clock != CLOCK_CPU or not self.ok:
            return None
        wall = self.wall_repeat_ratios
        wall_text = ""
        if len(wall) >= 4 and len(wall) % 2 == 0:
            wall_text = f"; wall-clock ratio {math.exp(order_balanced_log_ratio(wall)[0]):.3f}"
        return (f"ratio of CPU time per block, {len(self.repeat_ratios)} repeats (time "
                f"waiting for a core is left out){wall_text}")

    def undecided_note(self) -> str | None:
        """Why a sequential measurement that reached its cap did not decide (None if it did)."""
        if self.decision != UNDECIDED or self.plan is None:
            return None
        return (f"inconclusive after {len(self.repeat_ratios)} repeats (the cap): a change "
                f"beyond {self.plan.limit * 100:g}% is not ruled out (95% CI "
                f"{self.ci_low:.3f}–{self.ci_high:.3f})")

    @property
    def decision(self) -> str | None:
        """The sequential decision (slower, faster, within, undecided), None for fixed repeats."""
        return self.looks[-1].decision if self.looks else None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def details(self) -> dict[str, Any]:
        blocks = self.block_ratios
        return {"repeat_ratios": self.repeat_ratios, "a_ms": self.a_ms, "b_ms": self.b_ms,
                "block_size": self.block_size, "repeats": self.repeats,
                "repeat_s": self.repeat_s, "blocks": int(blocks.size),
                "block_ratio_median": float(np.median(blocks)) if blocks.size else None,
                "wall_s": self.wall_s, "warnings": self.warnings, "runtime": self.runtime,
                "sequential": self.plan.to_dict() if self.plan else None,
                "clock": self.clock, "wall_repeat_ratios": self.wall_repeat_ratios,
                "looks": [look.to_dict() for look in self.looks]}


def repeat_seconds(profile: Profile, settings: RerunSettings | None = None) -> float:
    """How long each side-by-side repeat measures: ``repeat_s``, else ``DEFAULT_REPEAT_S``
    (the grain of the sequential decision, whatever the profile's stopping rule)."""
    chosen = settings.repeat_s if settings is not None else None
    return chosen or DEFAULT_REPEAT_S


def fitting_repeats(profile: Profile, settings: RerunSettings | None = None) -> int:
    """The most side-by-side repeats (even) that fit in the profile's ``timeout_s``."""
    return most_pair_repeats(profile.execution.timeout_s, repeat_seconds(profile, settings))


def effective_settings(profile: Profile, settings: RerunSettings | None) -> RerunSettings:
    """The settings a side-by-side measurement runs with: those given (a --repeats is the
    user's and is checked, never trimmed), else the default cap trimmed to the repeats that
    fit in the profile's ``timeout_s`` (the timeout is never raised to make room)."""
    if settings is not None and settings.cap_given:
        return settings
    default = settings or RerunSettings()
    most = fitting_repeats(profile, default)
    return default if most >= default.repeats else replace(default, repeats=max(4, most))


def check_side_by_side_possible(profile: Profile) -> None:
    """UsageError on an ``adb://`` profile: LiteRT's benchmark_model runs one model per
    process, so two releases cannot be interleaved in one worker there."""
    if is_adb(profile.execution.target):
        raise UsageError(f"profile {profile.name} measures on {profile.execution.target} with "
                         "benchmark_model, which runs one model per process: no side-by-side "
                         "measurement there; compare the stored runs (drop --rerun; medians "
                         "only) or re-measure on a local or ssh profile")


def check_pair_fits(profile: Profile, settings: RerunSettings | None = None) -> None:
    """Raise UsageError (exit 2, before anything runs) unless a side-by-side measurement
    with ``settings`` fits in the profile's ``execution.timeout_s``; the timeout is the
    user's setting and is never raised to make room (``core.limits.pair_seconds``), or
    when the profile measures on a phone, where nothing can run side by side."""
    check_side_by_side_possible(profile)
    given = settings is not None and settings.cap_given
    settings = effective_settings(profile, settings)
    repeat_s = repeat_seconds(profile, settings)
    timeout = profile.execution.timeout_s
    if pair_seconds(settings.repeats, repeat_s) <= timeout:
        return
    most = fitting_repeats(profile, settings)
    fix = (f"give --repeats {most} or fewer, " if given and most >= 4 else "")
    where = f" in {profile.source}" if profile.source else ""
    flag = f"--repeats {settings.repeats}" if given else "a side-by-side measurement"
    raise UsageError(f"{flag} does not fit in profile {profile.name}'s "
                     f"execution.timeout_s ({timeout:g} s): "
                     f"{pair_need_text(settings.repeats, repeat_s)}; {fix}raise "
                     f"timeout_s{where}")


def measured_profile(profile: Profile) -> Profile:
    """The profile as ``devtrack bench -p NAME`` runs it: its hash is the one runs store."""
    return BenchOverrides().apply(profile)


def pair_job(ws: Workspace, a: Release, b: Release, profile: Profile, key: str,
             repeat_s: float) -> dict[str, Any]:
    """The worker job that runs ``a`` and ``b`` side by side: both artifacts under ``key``
    ("pair": interleaved latency, ``bench/interleaved.py``; "op_pair": per operator,
    ``bench/op_pair.py``), the inputs both take, the profile's runtime options, and
    ``repeat_s`` as each repeat's length. Raises UsageError for inputs they cannot share."""
    from devtrack.benchmarking import build_job, plan
    from devtrack.core.input_layout import input_layout

    overrides = BenchOverrides()
    merged = [merged_specs(release, overrides) for release in (a, b)]
    specs = {s.name: s for release_specs, _ in merged for s in release_specs}
    fills = {f.name: f for _, release_fills in merged for f in release_fills}
    for release in (a, b):
        input_layout(release.summary.inputs, list(specs.values()), list(fills.values()))
    measurements, _ = plan([a, b], [profile], overrides)
    jobs = [build_job(ws, x, op_profile=False) for x in measurements]
    job = {**jobs[0], key: [{k: j[k] for k in ("artifact_path", "sha256", "format")}
                            for j in jobs],
           "input_specs": [s.to_dict() for s in specs.values()],
           "fills": [f.to_dict() for f in fills.values()],
           "measurement": {**jobs[0]["measurement"], "min_time_s": repeat_s}}
    job.pop("artifact_path")
    job.pop("evaluation", None)  # a side-by-side worker measures latency only
    return job


def run_pair_job(job: dict[str, Any], profile: Profile, sessions: int) -> dict[str, Any]:
    """Run a :func:`pair_job` in one isolated worker on the profile's target
    (``targets.target_for``: this host, or the device it names) under the profile's threads,
    CPU affinity and timeout; its memory cap is ``sessions`` times the profile's (that many
    sessions are open at once). Returns the worker's result dict (never raises but Aborted)."""
    import os
    from dataclasses import replace

    from devtrack.targets import LOCAL, TargetJob, target_for

    target = target_for(profile)
    execution = profile.execution
    cap = execution.memory_limit_mb
    execution = replace(execution, memory_limit_mb=sessions * cap if cap else None)
    if target.scheme == LOCAL and execution.cpu_affinity and hasattr(os, "sched_getaffinity"):
        # The cores this host has, chosen quietly (a bench run's warning already says so).
        execution = replace(execution, cpu_affinity=execution.effective_affinity(
            sorted(os.sched_getaffinity(0))))
    return target.run(TargetJob(job, replace(profile, execution=execution),
                                profile.execution.timeout_s))


def measure_pair(ws: Workspace, baseline: Release, candidate: Release, profile: Profile,
                 settings: RerunSettings | None = None, progress: Progress | None = None,
                 limit_pct: float | None = None) -> PairedResult:
    """Measure both artifacts side by side in one isolated worker (interleaved blocks).

    ``profile`` is used as given (pass :func:`measured_profile` of a loaded one). The
    sequential decision judges against ``limit_pct`` (default: the profile's
    ``max_latency_regression_pct``, else the policy default). Raises UsageError for inputs
    the pair cannot share or a measurement that does not fit in the profile's timeout
    (:func:`check_pair_fits`), and Aborted on Ctrl-C or SIGTERM; every other problem is a
    result with status "failed".
    """
    from devtrack.bench.protocol import decode_samples

    settings = effective_settings(profile, settings)
    check_runs_formats(profile, baseline, candidate)
    check_pair_fits(profile, settings)
    repeat_s = repeat_seconds(profile, settings)
    if limit_pct is None:
        limit_pct = latency_limit_pct(profile.budgets)
    sequential = (SequentialPlan(limit_pct / 100.0, settings.repeats, settings.alpha)
                  if settings.sequential else None)
    job = {**pair_job(ws, baseline, candidate, profile, "pair", repeat_s),
           "block_size": settings.block_size, "repeats": settings.repeats,
           "sequential": sequential.to_dict() if sequential else None,
           "clock": settings.clock}
    if progress is not None:
        how = (f"until decided against {sequential.limit * 100:g}%, at most "
               f"{settings.repeats}" if sequential else f"{settings.repeats}")
        progress(f"measuring {baseline.ref} and {candidate.ref} side by side on "
                 f"{profile.name}: {how} × {repeat_s:g} s")
    raw = run_pair_job(job, profile, sessions=2)  # two models are loaded
    result = PairedResult(raw.get("status", "failed"), raw.get("error"),
                          block_size=int(raw.get("block_size") or 0),
                          repeats=int(raw.get("repeats") or 0),
                          repeat_s=float(raw.get("repeat_s") or repeat_s),
                          wall_s=(raw.get("isolation") or {}).get("wall_s"),
                          warnings=list(raw.get("warnings") or []), runtime=raw.get("runtime"),
                          plan=sequential, clock=raw.get("clock") or CLOCK_WALL)
    if not result.ok:
        return result
    result.wall_repeat_ratios = [float(x) for x in raw["repeat_median_ratios"]]
    result.repeat_ratios = ([float(x) for x in raw["repeat_cpu_ratios"]]
                            if result.clock == CLOCK_CPU else result.wall_repeat_ratios)
    result.block_ratios = decode_samples(raw["ratios_b_over_a"])
    summarise_repeats(result)
    result.a_ms = float(raw["a"]["stats"]["median"])
    result.b_ms = float(raw["b"]["stats"]["median"])
    return result


@contextmanager
def stop_when(requested: Callable[[], bool]) -> Iterator[None]:
    """In this block, a side-by-side re-measure this thread runs (``compare --rerun``, a
    check) is stopped once ``requested()`` turns true, and raises Aborted, as on Ctrl-C:
    for callers such as the app that reach the worker only through ``compare_releases``."""
    from devtrack.bench.runner import stop_when as stop_worker_when

    with stop_worker_when(requested):
        yield


def summarise_repeats(result: PairedResult) -> None:
    """Set ``result``'s ratio and CI from its repeat ratios (the worker's looks, recomputed)."""
    if result.plan is not None:
        result.looks = run_sequence(result.repeat_ratios, result.plan)
        last = result.looks[-1]
        result.ratio, result.ci_low, result.ci_high = last.ratio, last.ci_low, last.ci_high
    else:
        result.ratio, result.ci_low, result.ci_high = paired_ratio_summary(result.repeat_ratios)
