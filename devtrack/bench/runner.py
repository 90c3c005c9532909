"""The parent side of a measurement: spawn the worker, confine it, watch it, read its result.

The worker (``devtrack.bench.worker``) runs in a fresh process so a crashing runtime cannot
take devtrack down and memory numbers are its own. Here it gets its thread count, CPU
affinity, a resident-memory cap (its RSS is polled every ~50 ms and it is killed above the
cap; RLIMIT_AS would count address space runtimes reserve but never touch) and a wall
timeout. Whatever happens, the caller gets a result dict with ``status`` "ok" or "failed"
and a one-line ``error``; the child's stderr is captured, never shown as a traceback.
A failed result always has ``status``, ``error``, ``warnings`` and ``isolation``; the rest
of the worker's fields only when the worker got far enough to write them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devtrack
from devtrack.bench.protocol import PROTOCOL_KEY, PROTOCOL_VERSION, version_problem
from devtrack.errors import Aborted
from devtrack.interrupts import deferred, reason, signum_of
from devtrack.locks import owned_temp_dir

POLL_S = 0.05
PARENT_PID_ENV = "DEVTRACK_PARENT_PID"
STDERR_TAIL_LINES = 20
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MEMORY_CAP_METHOD = f"child VmRSS polled every {POLL_S * 1000:g} ms, SIGKILL above the cap"
# Asked on every poll: for callers that cannot pass ``progress`` down to run_job (the app's
# side-by-side re-measure runs under compare_releases). A context variable: per thread.
_STOP_WHEN: ContextVar[Callable[[], bool] | None] = ContextVar("devtrack_stop_when",
                                                               default=None)


@dataclass(frozen=True)
class Progress:
    """What ``run_job`` reports to its ``progress`` callback on every poll (~50 ms)."""

    pid: int
    phase: str  # the worker's current phase: "import", "load", "measure", … ("" at start)
    elapsed_s: float
    rss_mb: float | None


@contextmanager
def stop_when(requested: Callable[[], bool]) -> Iterator[None]:
    """In this block, a worker this thread runs is killed once ``requested()`` turns true,
    and ``run_job`` raises Aborted, as on Ctrl-C."""
    token = _STOP_WHEN.set(requested)
    try:
        yield
    finally:
        _STOP_WHEN.reset(token)


def stop_requested() -> bool:
    """Whether a ``stop_when`` block around this call asks to stop now (for runners of
    other kinds, such as ``bench.remote``, to honour it as ``run_job`` does)."""
    stop = _STOP_WHEN.get()
    return bool(stop is not None and stop())


def clamp_affinity(requested: list[int] | None,
                   available: set[int] | None = None) -> tuple[list[int] | None, list[str]]:
    """The cores to pin to, and warnings when ``requested`` had to change.

    Requested cores that exist here are kept; if none exist, the lowest available cores
    are used, as many as requested (a profile describes a device, not this host).
    """
    if not requested:
        return None, []
    if not hasattr(os, "sched_setaffinity"):
        return None, [f"cpu_affinity {requested} ignored: CPU affinity is not supported on "
                      f"{sys.platform}"]
    have = sorted(available if available is not None else os.sched_getaffinity(0))
    kept = [c for c in requested if c in have]
    chosen = kept or have[: len(requested)]
    if chosen == list(requested):
        return chosen, []
    missing = [c for c in requested if c not in have]
    return chosen, [f"cpu_affinity {list(requested)}: core(s) {missing} not available here "
                    f"(available: {have}); pinned to {chosen}"]


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    # The worker must import this very devtrack, installed or not.
    root = str(Path(devtrack.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONSTARTUP", None)
    env[PARENT_PID_ENV] = str(os.getpid())  # the worker leaves if it outlives this process
    return env


@contextmanager
def _run_folder() -> Iterator[Path]:
    """A private ``devtrack-run-*`` temp folder for one worker, removed whatever happens: an
    interrupt that arrives while it is created or removed waits until that is done. It is
    owned through a held lock file (``locks.owned_temp_dir``), so `devtrack gc` can remove it
    if this process is killed."""
    folder = owned_temp_dir(prefix="devtrack-run-")
    with deferred():
        path = folder.__enter__()
    try:
        yield path
    finally:
        with deferred():
            folder.__exit__(None, None, None)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's whole process group (it is a session leader) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _stderr_tail(path: Path) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()][-STDERR_TAIL_LINES:]


def _reason_line(tail: list[str]) -> str:
    """The last stderr line that says something (runtimes log INFO lines on the way)."""
    for line in reversed(tail):
        if not line.startswith(("INFO", "I0000", "└")):
            return line.strip()
    return ""


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _read_phase(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def run_job(job: dict[str, Any], *, threads: int, cpu_affinity: list[int] | None,
            memory_limit_mb: float | None, timeout_s: float,
            progress: Callable[[Progress], None] | None = None) -> dict[str, Any]:
    """Run ``job`` in a fresh worker process and return its result dict.

    ``threads`` goes to the runtime (it overrides ``job["options"]["threads"]``) and to the
    OpenMP/BLAS pools. Raises Aborted on Ctrl-C (exit code 130), or on SIGTERM (143) and
    SIGHUP (129) inside ``interrupts.signals_interrupt``, after killing the worker; the temp
    folder is removed either way. Every other outcome (crash, memory cap, timeout, bad
    artifact) is a "failed" result.
    """
    job = dict(job)
    job.setdefault(PROTOCOL_KEY, PROTOCOL_VERSION)  # a job built here speaks this version
    job["options"] = {**job.get("options", {}), "threads": threads}
    affinity, warnings = clamp_affinity(cpu_affinity)
    isolation: dict[str, Any] = {
        "threads": threads, "cpu_affinity": affinity, "memory_limit_mb": memory_limit_mb,
        "memory_limit_method": MEMORY_CAP_METHOD if memory_limit_mb else None,
        "timeout_s": timeout_s,
    }
    with _run_folder() as tmpdir:
        job_path, result_path = tmpdir / "job.json", tmpdir / "result.json"
        phase_path, stderr_path = tmpdir / "phase", tmpdir / "stderr.txt"
        job["progress_path"] = str(phase_path)
        proc: subprocess.Popen[bytes] | None = None
        started = time.monotonic()
        # Everything from here to the result is inside one try: an interrupt at any point
        # stops the worker (if it started) and becomes Aborted, so the run is stored.
        try:
            job_path.write_text(json.dumps(job), encoding="utf-8")
            started = time.monotonic()
            with deferred(), open(stderr_path, "wb") as err:  # never a worker without a handle
                proc = subprocess.Popen(
                    [sys.executable, "-m", "devtrack.bench.worker", str(job_path),
                     str(result_path)],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=_child_env(threads),
                    start_new_session=True,  # Ctrl-C reaches devtrack, which stops the worker
                )
            isolation["pid"] = proc.pid
            if affinity:
                try:
                    os.sched_setaffinity(proc.pid, affinity)
                except OSError as exc:  # e.g. the child is already gone
                    warnings.append(f"could not pin the worker to cores {affinity}: {exc}")
            killed_for, peak_rss = _watch(proc, started, memory_limit_mb, timeout_s,
                                          phase_path, progress)
            isolation["wall_s"] = round(time.monotonic() - started, 3)
            isolation["observed_peak_rss_mb"] = round(peak_rss, 2) if peak_rss else None
            isolation["returncode"] = proc.returncode
            tail = _stderr_tail(stderr_path)
            result = _outcome(proc.returncode, killed_for, result_path, tail)
            if result["status"] != "ok":
                result["phase"] = result.get("phase") or _read_phase(phase_path)
                isolation["stderr_tail"] = tail
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (devtrack.interrupts)
            if proc is not None:
                _kill(proc)
            signum = signum_of(exc)
            isolation["wall_s"] = round(time.monotonic() - started, 3)
            partial = {PROTOCOL_KEY: PROTOCOL_VERSION, "status": "aborted",
                       "error": f"{reason(signum)}; worker stopped",
                       "phase": _read_phase(phase_path), "warnings": warnings,
                       "isolation": isolation}
            raise Aborted(f"benchmark {reason(signum)}; the worker process was stopped",
                          result=partial, signum=signum) from None
        except Aborted as exc:  # the progress callback or a stop request: keep what is known
            if proc is not None:
                _kill(proc)
            isolation["wall_s"] = round(time.monotonic() - started, 3)
            exc.result = {PROTOCOL_KEY: PROTOCOL_VERSION, "status": "aborted",
                          "error": str(exc), "phase": _read_phase(phase_path),
                          "warnings": warnings, "isolation": isolation,
                          **{k: v for k, v in exc.result.items() if k != "status"}}
            raise
        except BaseException:  # e.g. the progress callback raised: never leave an orphan
            if proc is not None:
                _kill(proc)
            raise
    result["warnings"] = warnings + list(result.get("warnings") or [])
    result["isolation"] = isolation
    return result


def _watch(proc: subprocess.Popen[bytes], started: float, memory_limit_mb: float | None,
           timeout_s: float, phase_path: Path,
           progress: Callable[[Progress], None] | None) -> tuple[str | None, float]:
    """Poll until the worker exits; kill it on the memory cap or the timeout.

    Returns (why it was killed or None, the highest RSS seen in MiB).
    """
    peak = 0.0
    stop = _STOP_WHEN.get()
    while True:
        try:
            proc.wait(timeout=POLL_S)
            return None, peak
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - started
        rss = _rss_mb(proc.pid)
        if rss is not None:
            peak = max(peak, rss)
            if memory_limit_mb is not None and rss > memory_limit_mb:
                _kill(proc)
                return (f"exceeded memory limit of {memory_limit_mb:g} MB "
                        f"(resident {rss:.0f} MB)"), peak
        if elapsed > timeout_s:
            _kill(proc)
            return f"timed out after {timeout_s:g} s", peak
        if progress is not None:
            progress(Progress(proc.pid, _read_phase(phase_path), elapsed, rss))
        if stop is not None and stop():
            raise Aborted("measurement stopped on request; the worker process was stopped")


def _failed(error: str) -> dict[str, Any]:
    return {PROTOCOL_KEY: PROTOCOL_VERSION, "status": "failed", "error": error, "warnings": []}


def _read_result(result_path: Path) -> dict[str, Any]:
    """The worker's result file, refused (a failed result saying why) when it is of another
    protocol version."""
    try:
        result = dict(json.loads(result_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return _failed(f"worker wrote an unreadable result: {exc}")
    problem = version_problem(result, "worker's result")
    if problem is None:
        return result
    said = result.get("error")
    return _failed(problem + (f" (the worker said: {said})" if said else ""))


def _outcome(returncode: int, killed_for: str | None, result_path: Path,
             tail: list[str]) -> dict[str, Any]:
    if killed_for is not None:
        return _failed(killed_for)
    if result_path.exists():
        return _read_result(result_path)
    reason = _reason_line(tail)
    if returncode < 0:
        error = f"crashed: {_signal_name(returncode)}"
        return _failed(f"{error} ({reason})" if reason else error)
    return _failed(f"worker exited with code {returncode} without a result"
                   + (f": {reason}" if reason else ""))
