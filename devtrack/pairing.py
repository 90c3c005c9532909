"""Side-by-side re-measurement of two releases: both in one isolated worker, interleaved.

Stored runs taken at different times differ by far more than a gate must catch (ARCHITECTURE.md,
"Measurement"), so verdicts that decide come from here: short blocks of inferences of both
models alternate inside one worker, with block order and session-creation order alternated
across repeats, and the per-repeat median block ratios are summarised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devtrack.benchmarking import BenchOverrides, merged_specs
from devtrack.core.limits import most_pair_repeats, pair_need_text, pair_seconds
from devtrack.core.profile import MAX_REPEATS, Profile
from devtrack.core.release import Release
from devtrack.core.significance import paired_ratio_summary
from devtrack.errors import UsageError
from devtrack.workspace import Workspace

Progress = Callable[[str], None]

MIN_REPEAT_S = 0.2
PAIRS_PER_REPEAT = 8  # aim for at least this many block pairs in each repeat
MAX_BLOCK_SIZE = 10


def check_runs_formats(profile: Profile, *releases: Release) -> None:
    for release in releases:
        if not profile.runs_format(release.format):
            raise UsageError(f"profile {profile.name!r} does not run {release.format} models "
                             f"({release.ref}); its formats: {', '.join(profile.formats)}")


@dataclass(frozen=True)
class RerunSettings:
    """How a side-by-side re-measurement runs (ARCHITECTURE.md, "Measurement").

    ``repeats`` re-create both sessions, alternating which is created and run first, so it
    must be even. ``repeat_s`` defaults to the profile's ``min_time_s`` (at least 0.2 s);
    ``block_size`` to 10 inferences, fewer for slow models so each repeat holds ~8 pairs.
    """

    repeats: int = 6
    repeat_s: float | None = None
    block_size: int | None = None

    def __post_init__(self) -> None:
        if self.repeats < 4 or self.repeats % 2 or self.repeats > MAX_REPEATS:
            raise UsageError(f"repeats must be an even number from 4 to {MAX_REPEATS} (the "
                             f"order alternates), got {self.repeats}")
        if self.repeat_s is not None and self.repeat_s <= 0:
            raise UsageError(f"repeat_s must be > 0, got {self.repeat_s}")
        if self.block_size is not None and self.block_size < 1:
            raise UsageError(f"block_size must be >= 1, got {self.block_size}")


@dataclass
class PairedResult:
    """B/A from one interleaved worker: the median of the per-repeat median block ratios.

    The CI is the order-statistic CI of that median over the repeats, the independent
    units (each re-creates both sessions); block ratios within a repeat are correlated.
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def details(self) -> dict[str, Any]:
        blocks = self.block_ratios
        return {"repeat_ratios": self.repeat_ratios, "a_ms": self.a_ms, "b_ms": self.b_ms,
                "block_size": self.block_size, "repeats": self.repeats,
                "repeat_s": self.repeat_s, "blocks": int(blocks.size),
                "block_ratio_median": float(np.median(blocks)) if blocks.size else None,
                "wall_s": self.wall_s, "warnings": self.warnings, "runtime": self.runtime}


def repeat_seconds(profile: Profile, settings: RerunSettings | None = None) -> float:
    """How long each side-by-side repeat measures: ``repeat_s``, else the profile's
    ``min_time_s`` (at least 0.2 s)."""
    chosen = settings.repeat_s if settings is not None else None
    return chosen or max(MIN_REPEAT_S, profile.measurement.min_time_s)


def fitting_repeats(profile: Profile, settings: RerunSettings | None = None) -> int:
    """The most side-by-side repeats (even) that fit in the profile's ``timeout_s``."""
    return most_pair_repeats(profile.execution.timeout_s, repeat_seconds(profile, settings))


def check_pair_fits(profile: Profile, settings: RerunSettings | None = None) -> None:
    """Raise UsageError (exit 2, before anything runs) unless a side-by-side measurement
    with ``settings`` fits in the profile's ``execution.timeout_s``; the timeout is the
    user's setting and is never raised to make room (``core.limits.pair_seconds``)."""
    settings = settings or RerunSettings()
    repeat_s = repeat_seconds(profile, settings)
    timeout = profile.execution.timeout_s
    if pair_seconds(settings.repeats, repeat_s) <= timeout:
        return
    most = fitting_repeats(profile, settings)
    fix = (f"give --repeats {most} or fewer" if most >= 4
           else "lower its measurement.min_time_s (the length of a repeat)")
    where = f" in {profile.source}" if profile.source else ""
    raise UsageError(f"--repeats {settings.repeats} does not fit in profile {profile.name}'s "
                     f"execution.timeout_s ({timeout:g} s): "
                     f"{pair_need_text(settings.repeats, repeat_s)}; {fix}, or raise "
                     f"timeout_s{where}")


def measured_profile(profile: Profile) -> Profile:
    """The profile as ``devtrack bench -p NAME`` runs it: its hash is the one runs store."""
    return BenchOverrides().apply(profile)


def _block_size(ws: Workspace, releases: tuple[Release, Release], profile: Profile,
                repeat_s: float) -> int:
    row = ws.store.one(
        "SELECT MAX(p50_ms) AS p50 FROM runs WHERE status = 'ok' AND profile = ? AND "
        "release_id IN (?, ?)", (profile.name, releases[0].id, releases[1].id))
    p50 = row["p50"] if row else None
    if not p50:
        return MAX_BLOCK_SIZE
    fitting = int(repeat_s * 1000.0 / (2 * PAIRS_PER_REPEAT * p50))
    return max(1, min(MAX_BLOCK_SIZE, fitting))


def measure_pair(ws: Workspace, baseline: Release, candidate: Release, profile: Profile,
                 settings: RerunSettings | None = None,
                 progress: Progress | None = None) -> PairedResult:
    """Measure both artifacts side by side in one isolated worker (interleaved blocks).

    ``profile`` is used as given (pass :func:`measured_profile` of a loaded one). Raises
    UsageError for inputs the pair cannot share or a measurement that does not fit in the
    profile's timeout (:func:`check_pair_fits`), and Aborted on Ctrl-C or SIGTERM; every
    other problem is a result with status "failed".
    """
    import base64
    import os

    from devtrack.bench.runner import run_job
    from devtrack.benchmarking import build_job, plan
    from devtrack.core.input_layout import input_layout

    settings = settings or RerunSettings()
    check_runs_formats(profile, baseline, candidate)
    check_pair_fits(profile, settings)
    overrides = BenchOverrides()
    specs = {s.name: s for r in (baseline, candidate) for s in merged_specs(r, overrides)[0]}
    fills = {f.name: f for r in (baseline, candidate) for f in merged_specs(r, overrides)[1]}
    for release in (baseline, candidate):
        input_layout(release.summary.inputs, list(specs.values()), list(fills.values()))
    repeat_s = repeat_seconds(profile, settings)
    block = settings.block_size or _block_size(ws, (baseline, candidate), profile, repeat_s)
    measurements, _ = plan([baseline, candidate], [profile], overrides)
    jobs = [build_job(ws, x, op_profile=False) for x in measurements]
    job = {**jobs[0], "pair": [{k: j[k] for k in ("artifact_path", "sha256", "format")}
                               for j in jobs],
           "input_specs": [s.to_dict() for s in specs.values()],
           "fills": [f.to_dict() for f in fills.values()],
           "block_size": block, "repeats": settings.repeats,
           "measurement": {**jobs[0]["measurement"], "min_time_s": repeat_s}}
    job.pop("artifact_path")
    execution = profile.execution
    affinity = (list(execution.effective_affinity(sorted(os.sched_getaffinity(0))))
                if hasattr(os, "sched_getaffinity") and execution.cpu_affinity else None)
    cap = execution.memory_limit_mb
    if progress is not None:
        progress(f"measuring {baseline.ref} and {candidate.ref} side by side on "
                 f"{profile.name}: {settings.repeats} × {repeat_s:g} s, blocks of {block}")
    raw = run_job(job, threads=execution.threads, cpu_affinity=affinity,
                  memory_limit_mb=2 * cap if cap else None,  # two models are loaded
                  timeout_s=execution.timeout_s,
                  progress=None)
    result = PairedResult(raw.get("status", "failed"), raw.get("error"), block_size=block,
                          repeats=settings.repeats, repeat_s=repeat_s,
                          wall_s=(raw.get("isolation") or {}).get("wall_s"),
                          warnings=list(raw.get("warnings") or []), runtime=raw.get("runtime"))
    if not result.ok:
        return result
    result.repeat_ratios = [float(x) for x in raw["repeat_median_ratios"]]
    result.block_ratios = np.frombuffer(base64.b64decode(raw["ratios_b_over_a"]),
                                        dtype="<f4").astype(np.float64)
    result.ratio, result.ci_low, result.ci_high = paired_ratio_summary(result.repeat_ratios)
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
