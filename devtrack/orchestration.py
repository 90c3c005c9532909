"""The one bench loop of the CLI and the app: one job per device at a time, devices in parallel.

It plans, reports every job's progress and stops on request or on a signal. ``run_bench``
coordinates from the caller's thread: it builds each job, hands it to a thread of that job's
device (``targets.device_of``: every local profile is the device ``local``, so
local measurements never overlap; each other target is a device of its own), relays the
thread's progress as :class:`JobEvent`s, and stores each result as it arrives, so the
database is written from one thread only (under ``interrupts.deferred``, as before).
Stopping — ``stop()`` turning true, or Ctrl-C, SIGTERM or SIGHUP arriving in the caller's
thread inside ``interrupts.signals_interrupt`` — stops every running worker; each
interrupted run is stored as aborted with the reason, finished runs are kept and no further
job starts. A second Ctrl-C while the aborted runs are stored interrupts as Python does.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from devtrack.benchmarking import (
    BenchOverrides,
    Measurement,
    PreparedJob,
    get_run,
    plan,
    prepare_job,
    store_aborted,
    store_result,
)
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.errors import Aborted, NotFoundError
from devtrack.interrupts import deferred, signum_of
from devtrack.interrupts import reason as interrupt_reason
from devtrack.targets import Target, TargetJob, device_of, target_for
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    from devtrack.bench.runner import Progress

POLL_S = 0.05  # how often the coordinator looks at ``stop()`` while no event arrives
EventKind = Literal["skipped", "planned", "started", "phase", "finished"]


@dataclass(frozen=True)
class JobEvent:
    """What happened to one job of a bench.

    ``skipped``: a (release, profile) pair that cannot run (``label`` says why; index 0);
    ``planned``: a job will run; ``started``: its worker is being started on ``device``;
    ``phase``: a progress poll (the worker's phase, elapsed seconds, resident memory);
    ``finished``: stored as ``run_id`` with ``status`` ok, failed or aborted (``run``).
    """

    kind: EventKind
    index: int  # 1-based position in the plan
    total: int
    device: str  # "local", "ssh://pi@board", …
    label: str  # "kws@1.1.0 on ci-host"
    phase: str = ""
    elapsed_s: float = 0.0
    rss_mb: float | None = None
    run_id: int | None = None
    status: str | None = None
    run: dict[str, Any] | None = None


@dataclass(frozen=True)
class PlannedJob:
    """One measurement of a bench with its place in the plan and its device."""

    index: int
    measurement: Measurement
    device: str
    target: Target

    @property
    def label(self) -> str:
        return f"{self.measurement.release.ref} on {self.measurement.profile.name}"


@dataclass
class BenchPlan:
    """Every job a bench runs, in order, and a note for each pair that cannot run."""

    jobs: list[PlannedJob]
    skipped: list[str]

    @property
    def devices(self) -> list[str]:
        """The devices the jobs run on, in order of first use."""
        return list(dict.fromkeys(job.device for job in self.jobs))


@dataclass
class BenchOutcome:
    """What a bench did: the stored runs (plan order) and why it ended early, if it did."""

    runs: list[dict[str, Any]]
    skipped: list[str]
    devices: list[str]
    stopped: str | None = None  # the reason it stopped before the end (stop or a signal)
    interrupted: Aborted | None = None  # set when a signal stopped it: its exit code
    not_run: list[str] = field(default_factory=list)  # labels of jobs that never started


def plan_bench(ws: Workspace, releases: list[Release], profiles: list[Profile],
               overrides: BenchOverrides) -> BenchPlan:
    """Every (release, profile) pair that can run, each with its device; NotFoundError when
    none can. A profile whose target has no runner is a UsageError, before anything runs."""
    measurements, skipped = plan(releases, profiles, overrides, ws=ws)
    jobs = [PlannedJob(i, m, device_of(m.profile), target_for(m.profile))
            for i, m in enumerate(measurements, 1)]
    return BenchPlan(jobs, skipped)


def plan_pairs(ws: Workspace, pairs: list[tuple[Release, Profile]],
               overrides: BenchOverrides) -> BenchPlan:
    """Jobs for chosen (release, profile) pairs, in that order (``check --bench`` measures
    only what lacks a run); a pair that cannot run is a skipped note."""
    jobs: list[PlannedJob] = []
    skipped: list[str] = []
    for release, profile in pairs:
        measurements, notes = plan([release], [profile], overrides, ws=ws)
        skipped += notes
        jobs += [PlannedJob(len(jobs) + 1, m, device_of(m.profile), target_for(m.profile))
                 for m in measurements]
    return BenchPlan(jobs, skipped)


def bench(ws: Workspace, releases: list[Release], profiles: list[Profile],
          overrides: BenchOverrides, *, on_event: Callable[[JobEvent], None] | None = None,
          stop: Callable[[], bool] | None = None,
          stop_reason: str = "stopped on request") -> BenchOutcome:
    """Plan and run a bench: ``skipped`` events first, then :func:`run_bench`."""
    bench_plan = plan_bench(ws, releases, profiles, overrides)
    emit = on_event or (lambda event: None)
    for note in bench_plan.skipped:
        emit(JobEvent("skipped", 0, len(bench_plan.jobs), "", note))
    if not bench_plan.jobs:
        raise NotFoundError("nothing to measure: no chosen profile runs these releases' "
                            "formats")
    return run_bench(ws, bench_plan, overrides, on_event=on_event, stop=stop,
                     stop_reason=stop_reason)


def run_bench(ws: Workspace, bench_plan: BenchPlan, overrides: BenchOverrides, *,
              on_event: Callable[[JobEvent], None] | None = None,
              stop: Callable[[], bool] | None = None,
              stop_reason: str = "stopped on request") -> BenchOutcome:
    """Run the plan's jobs, one per device at a time and devices in parallel, storing each.

    ``on_event`` is called in this thread. When ``stop()`` turns true, every running worker
    is stopped and stored as aborted with ``stop_reason``; Ctrl-C, SIGTERM and SIGHUP do the
    same with the signal's reason and set ``interrupted``. A job that cannot start (say a
    stored artifact that no longer verifies) raises its error once the running jobs are done
    and stored.
    """
    run = _Coordinator(ws, bench_plan, overrides, on_event or (lambda event: None), stop,
                       stop_reason)
    try:
        run.loop()
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (devtrack.interrupts)
        signum = signum_of(exc)
        run.halt(interrupt_reason(signum), signum)
        run.interrupted = Aborted(f"benchmark {interrupt_reason(signum)}; the worker "
                                  "process was stopped", signum=signum)
        run.loop()  # only collects and stores the stopped jobs now
    except Exception as exc:  # e.g. on_event or the database failed: stop the other devices
        run.halt(f"stopped: {type(exc).__name__} in devtrack while measuring")
        run.error = run.error or exc
        run.loop(draining=True)
    if run.error is not None:
        raise run.error
    return run.outcome()


@dataclass
class _Halt:
    """Shared with the device threads: once ``reason`` is set, their workers stop."""

    reason: str | None = None
    signum: int = int(signal.SIGINT)


@dataclass
class _Running:
    job: PlannedJob
    prepared: PreparedJob
    thread: threading.Thread


class _Coordinator:
    """The state of one ``run_bench``: pending jobs per device, running ones, results."""

    def __init__(self, ws: Workspace, bench_plan: BenchPlan, overrides: BenchOverrides,
                 emit: Callable[[JobEvent], None], stop: Callable[[], bool] | None,
                 stop_reason: str) -> None:
        self.ws, self.plan, self.overrides = ws, bench_plan, overrides
        self.emit, self.stop, self.stop_reason = emit, stop, stop_reason
        self.total = len(bench_plan.jobs)
        self.pending: dict[str, deque[PlannedJob]] = {}
        for job in bench_plan.jobs:
            self.pending.setdefault(job.device, deque()).append(job)
        self.running: dict[str, _Running] = {}
        self.inbox: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.halted = _Halt()
        self.runs: dict[int, dict[str, Any]] = {}
        self.error: BaseException | None = None
        self.interrupted: Aborted | None = None
        self.announced = False

    def event(self, kind: EventKind, job: PlannedJob, **fields: Any) -> JobEvent:
        return JobEvent(kind, job.index, self.total, job.device, job.label, **fields)

    def halt(self, reason: str, signum: int = int(signal.SIGINT)) -> None:
        if self.halted.reason is None:
            self.halted.signum = signum
            self.halted.reason = reason

    def loop(self, draining: bool = False) -> None:
        """Start jobs on idle devices and handle what the running ones post, until none runs.
        ``draining``: after a failure, only collect and store; a further failure is noted,
        never raised, so no device thread is left behind."""
        if draining:
            self.emit = lambda event: None
        if not self.announced:
            self.announced = True
            for job in self.plan.jobs:
                self.emit(self.event("planned", job))
        while True:
            if self.stop is not None and self.stop():
                self.halt(self.stop_reason)
            if self.halted.reason is None and self.error is None:
                self.start_idle_devices()
            if not self.running:
                return
            # A signal waits for the message taken to be handled (≤ POLL_S of waiting):
            # a result taken off the queue is always stored and counted.
            with deferred():
                try:
                    message = self.inbox.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                try:
                    self.handle(message)
                except Exception as exc:
                    if not draining:
                        raise
                    self.error = self.error or exc

    def start_idle_devices(self) -> None:
        for device, waiting in self.pending.items():
            if device in self.running or not waiting:
                continue
            job = waiting[0]
            try:
                prepared = prepare_job(self.ws, job.measurement, self.overrides)
            except Exception as exc:  # a job that cannot start: no more start, then raise
                self.error = exc
                return
            thread = threading.Thread(target=_measure_on_device,
                                      args=(job, prepared, self.inbox, self.halted),
                                      name=f"bench {device}", daemon=True)
            with deferred():  # never a worker thread this bench does not know of
                waiting.popleft()
                self.running[device] = _Running(job, prepared, thread)
                thread.start()
            self.emit(self.event("started", job, phase="starting"))

    def handle(self, message: tuple[str, int, Any]) -> None:
        kind, index, payload = message
        running = next(r for r in self.running.values() if r.job.index == index)
        job = running.job
        if kind == "phase":
            progress: Progress = payload
            self.emit(self.event("phase", job, phase=progress.phase or "starting",
                                 elapsed_s=progress.elapsed_s, rss_mb=progress.rss_mb))
            return
        running.thread.join()  # it has posted its last message: it is ending
        del self.running[job.device]
        if kind == "done":
            run_id = store_result(self.ws, running.prepared, payload)
        elif kind == "aborted":
            run_id = store_aborted(self.ws, running.prepared, payload, self.halted.reason)
        else:  # the target raised instead of returning a failed result
            self.error = self.error or payload
            return
        stored = self.runs[job.index] = get_run(self.ws, run_id)
        self.emit(self.event("finished", job, run_id=run_id, status=stored["status"],
                             run=stored))

    def outcome(self) -> BenchOutcome:
        not_run = [job.label for waiting in self.pending.values() for job in waiting]
        return BenchOutcome([self.runs[i] for i in sorted(self.runs)], self.plan.skipped,
                            self.plan.devices, self.halted.reason, self.interrupted, not_run)


def _measure_on_device(job: PlannedJob, prepared: PreparedJob,
                       inbox: queue.Queue[tuple[str, int, Any]], halted: _Halt) -> None:
    """A device's thread: run one job on its target, post progress and the outcome."""

    def progress(event: Progress) -> None:
        inbox.put(("phase", job.index, event))
        if halted.reason is not None:
            raise Aborted(f"benchmark {halted.reason}", signum=halted.signum)

    task = TargetJob(prepared.job, prepared.measurement.profile, prepared.timeout_s, progress)
    try:
        inbox.put(("done", job.index, job.target.run(task)))
    except Aborted as exc:
        inbox.put(("aborted", job.index, exc))
    except BaseException as exc:  # reported to the coordinator, raised there
        inbox.put(("error", job.index, exc))
