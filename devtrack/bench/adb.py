"""The parent side of a measurement on an Android phone: push the model, run benchmark_model, parse.

A profile with ``execution.target = "adb://SERIAL"`` is measured by LiteRT's own
``benchmark_model`` on the phone (pushed there once by the user; ``[adb] benchmark_model``
names it). The model is pushed once, cached under ``/data/local/tmp/devtrack/`` by its
sha256 (a cached copy is used only when the phone's ``sha256sum`` agrees). The tool runs with
the profile's threads, a ``taskset`` mask from ``cpu_affinity``, XNNPACK on or off,
``--report_peak_memory_footprint=true`` and, when asked, ``--enable_op_profiling=true``,
bounded by the profile's timeout (the tool on the phone is killed by its pid when it is
exceeded, or on Ctrl-C / SIGTERM). The phone's lock (``bench/phone_lock.py``) is held from
before the push until the tool has ended, so two hosts never measure on one phone at once.
Its output becomes a run holding only aggregates (``core/aggregate_runs.py``). Like
``runner.run_job``: whatever happens, the caller gets a result dict with ``status`` and a
one-line ``error``; an interrupt raises Aborted.

benchmark_model runs one model per process, so nothing here interleaves two models: the
side-by-side re-measurement of ``check`` and ``compare --rerun`` is not available on a phone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from devtrack.bench.phone_lock import (
    PhoneBusy,
    new_holder,
    phone_locked,
    read_holder,
    takeover_warning,
)
from devtrack.bench.runner import Progress
from devtrack.core.adb_target import DEVICE_DIR, is_adb, serial_of
from devtrack.core.aggregate_runs import result_from_log
from devtrack.core.benchmark_model_log import BenchmarkLog, parse_log
from devtrack.core.profile import Profile
from devtrack.errors import Aborted, LogFormatError, UsageError
from devtrack.interrupts import reason, signum_of

POLL_S = 0.1  # how often a running benchmark_model's progress is reported (and a stop seen)
STEP_TIMEOUT_S = 30.0  # any adb step but the benchmark itself (a push gets more per MB)
PUSH_S_PER_MB = 1.0  # a slow USB 2 link moves ~20 MB/s; a 1 s/MB allowance is generous
PID_MARK = "DEVTRACK_PID="
LEASE_MARGIN_S = 120.0  # a lock's lease: the measurement's own bounds plus this


@dataclass(frozen=True)
class PhoneRun:
    """One benchmark_model run on a phone, as a profile asks for it."""

    serial: str
    adb: str  # the client on this host
    benchmark_model: str  # its path on the phone
    threads: int
    cpu_affinity: tuple[int, ...]
    xnnpack: bool
    warmup_runs: int
    min_runs: int
    min_time_s: float
    max_time_s: float
    timeout_s: float

    @classmethod
    def of(cls, profile: Profile, timeout_s: float | None = None) -> PhoneRun:
        if not is_adb(profile.execution.target):
            raise UsageError(f"profile {profile.name} does not target a phone (adb://SERIAL)")
        e, m = profile.execution, profile.measurement
        return cls(serial_of(e.target), profile.adb.adb, profile.adb.benchmark_model,
                   e.threads, e.cpu_affinity, profile.litert.xnnpack, m.warmup_runs,
                   m.min_runs, m.min_time_s, m.max_time_s,
                   timeout_s if timeout_s is not None else e.timeout_s)

    def device_model_path(self, sha256: str) -> str:
        return f"{DEVICE_DIR}/{sha256}.tflite"

    def tool_arguments(self, model_path: str, op_profile: bool) -> list[str]:
        """benchmark_model's command line (after taskset, when pinned)."""
        args = [self.benchmark_model, f"--graph={model_path}",
                f"--num_threads={self.threads}",
                f"--use_xnnpack={'true' if self.xnnpack else 'false'}",
                "--report_peak_memory_footprint=true",
                f"--warmup_runs={self.warmup_runs}", f"--num_runs={self.min_runs}",
                f"--min_secs={self.min_time_s:g}", f"--max_secs={self.max_time_s:g}"]
        if op_profile:
            args.append("--enable_op_profiling=true")
        if self.cpu_affinity:
            mask = sum(1 << core for core in self.cpu_affinity)
            args = ["taskset", f"{mask:x}", *args]
        return args


class AdbFailure(Exception):
    """One adb step failed; ``str()`` is the one-line reason."""


def _adb(run: PhoneRun, *args: str, timeout_s: float = STEP_TIMEOUT_S) -> str:
    """Run one adb command against the phone; its stdout, or AdbFailure naming what failed."""
    command = [run.adb, "-s", run.serial, *args]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise AdbFailure(f"adb client {run.adb!r} not found on this host (install Android "
                         "platform-tools or set [adb] adb = \"/path/to/adb\")") from None
    except subprocess.TimeoutExpired:
        raise AdbFailure(f"adb {' '.join(args[:1])} on {run.serial} did not answer within "
                         f"{timeout_s:g} s") from None
    out = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0:
        err = (done.stderr.decode("utf-8", errors="replace").strip() or out.strip())
        last = err.splitlines()[-1] if err else f"exit code {done.returncode}"
        raise AdbFailure(f"adb {' '.join(args[:1])} on {run.serial} failed: {last[:200]}")
    return out


def _shell(run: PhoneRun, command: list[str], timeout_s: float = STEP_TIMEOUT_S) -> str:
    return _adb(run, "shell", " ".join(shlex.quote(part) for part in command),
                timeout_s=timeout_s)


def adb_problems(run: PhoneRun) -> list[str]:
    """What is missing to measure on this phone: the adb client, the device, benchmark_model
    on it (executable), taskset when the profile pins cores. Empty: ready."""
    if shutil.which(run.adb) is None:
        return [f"adb client {run.adb!r} not found on this host (install Android "
                "platform-tools or set [adb] adb = \"/path/to/adb\")"]
    try:
        state = _adb(run, "get-state").strip()
    except AdbFailure as exc:
        return [f"device {run.serial} is not reachable: {exc}"]
    if state != "device":
        return [f"device {run.serial} is {state or 'in an unknown state'}, not ready "
                "(authorize it on the phone, or check `adb devices`)"]
    problems = []
    try:
        found = _adb(run, "shell", f"[ -x {shlex.quote(run.benchmark_model)} ] && echo present "
                                   "|| echo missing").strip()
        if found != "present":
            problems.append(f"benchmark_model is missing on {run.serial}: no executable "
                            f"{run.benchmark_model} (push LiteRT's android_aarch64 "
                            f"benchmark_model there and chmod +x it, or set [adb] "
                            "benchmark_model)")
        if run.cpu_affinity:
            where = _adb(run, "shell", "command -v taskset || echo missing").strip()
            if not where or where.endswith("missing"):
                problems.append(f"taskset is missing on {run.serial}, needed to pin "
                                f"cpu_affinity {list(run.cpu_affinity)}")
    except AdbFailure as exc:
        problems.append(str(exc))
    return problems


def adb_check(profile: Profile) -> list[str]:
    """For ``devtrack lab check``: what is missing to measure on ``profile``'s phone (one
    line each), empty when ready. Never raises for a device problem."""
    return adb_problems(PhoneRun.of(profile))


def device_facts(run: PhoneRun) -> dict[str, Any]:
    """The phone's make, model, Android version, ABI (empty where adb does not say)."""
    keys = ("ro.product.manufacturer", "ro.product.model", "ro.build.version.release",
            "ro.product.cpu.abi", "ro.soc.model")
    try:
        out = _adb(run, "shell", "; ".join(f"getprop {k}" for k in keys))
    except AdbFailure:
        return {"serial": run.serial}
    values = (out.splitlines() + [""] * len(keys))[: len(keys)]
    facts = {"serial": run.serial}
    for key, value in zip(("manufacturer", "model", "android", "abi", "soc"), values,
                          strict=True):
        if value.strip():
            facts[key] = value.strip()
    return facts


def push_model(run: PhoneRun, local_path: str, sha256: str) -> tuple[str, bool]:
    """The model's path on the phone, pushed unless a copy with this sha256 is there;
    (path, whether it was pushed). A push goes to a temp name, then is renamed."""
    remote = run.device_model_path(sha256)
    have = _adb(run, "shell", f"[ -f {remote} ] && sha256sum {remote} || true").split()
    if have and have[0].lower() == sha256.lower():
        return remote, False
    size_mb = os.path.getsize(local_path) / 1e6
    partial = f"{remote}.partial"
    _shell(run, ["mkdir", "-p", DEVICE_DIR])
    _adb(run, "push", local_path, partial, timeout_s=STEP_TIMEOUT_S + PUSH_S_PER_MB * size_mb)
    _shell(run, ["mv", "-f", partial, remote])
    check = _adb(run, "shell", f"sha256sum {remote}").split()
    if not check or check[0].lower() != sha256.lower():
        raise AdbFailure(f"the model pushed to {run.serial}:{remote} does not hash to its "
                         f"sha256 {sha256[:12]}… (storage full or a bad link?)")
    return remote, True


def _shell_runner(run: PhoneRun) -> Callable[[str, float], str]:
    return lambda command, timeout_s: _adb(run, "shell", command, timeout_s=timeout_s)


def _push_allowance_s(paths: list[str]) -> float:
    """The bound on pushing and checking these models (the steps before the tool runs)."""
    return sum(4 * STEP_TIMEOUT_S + PUSH_S_PER_MB * os.path.getsize(p) / 1e6 for p in paths)


@contextlib.contextmanager
def _locked(run: PhoneRun, profile: Profile, what: str, lease_s: float,
            progress: Callable[[Progress], None] | None) -> Iterator[dict[str, Any]]:
    """The phone's lock held for the block (bench/phone_lock.py)."""
    with phone_locked(_shell_runner(run), new_holder(what), lease_s=lease_s + LEASE_MARGIN_S,
                      timeout_s=profile.adb.lock_timeout_s, device=profile.name,
                      serial=run.serial, step_timeout_s=STEP_TIMEOUT_S,
                      progress=progress) as record:
        yield record


def _kill_remote(run: PhoneRun, pid: str | None) -> None:
    if pid:
        with contextlib.suppress(AdbFailure):
            _adb(run, "shell", f"kill {pid}", timeout_s=5)


def _pid_of(output: str) -> str | None:
    for line in output.splitlines():
        if line.startswith(PID_MARK):
            return line[len(PID_MARK):].strip() or None
    return None


def run_tool(run: PhoneRun, model_path: str, op_profile: bool,
             progress: Callable[[Progress], None] | None = None
             ) -> tuple[int | None, str, str]:
    """Run benchmark_model on the phone: (exit code or None on timeout, output, its pid).

    The remote shell prints its pid first (``exec`` keeps it for the tool), so a timeout, an
    interrupt or a stop request (``progress``, called every ~0.1 s, raising Aborted) kills
    exactly that process on the phone.
    """
    tool = " ".join(shlex.quote(a) for a in run.tool_arguments(model_path, op_profile))
    command = [run.adb, "-s", run.serial, "shell", f"echo {PID_MARK}$$; exec {tool} 2>&1"]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        while True:
            try:  # communicate() may be called again after a timeout: no output is lost
                out, _ = proc.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > run.timeout_s:
                    proc.kill()
                    out, _ = proc.communicate()
                    text = out.decode("utf-8", errors="replace")
                    _kill_remote(run, _pid_of(text))
                    return None, text, _pid_of(text) or ""
                if progress is not None:
                    progress(Progress(proc.pid, "measure", elapsed, None))
    except BaseException:
        proc.kill()
        out, _ = proc.communicate()
        _kill_remote(run, _pid_of(out.decode("utf-8", errors="replace")))
        raise
    text = out.decode("utf-8", errors="replace")
    return proc.returncode, text, _pid_of(text) or ""


def _what(job: dict[str, Any]) -> str:
    return f"measurement of {str(job.get('sha256', ''))[:12]}"


def _failed(error: str, **extra: Any) -> dict[str, Any]:
    return {"status": "failed", "error": error, "warnings": [], **extra}


def run_on_phone(job: dict[str, Any], profile: Profile, timeout_s: float | None = None,
                 progress: Callable[[Progress], None] | None = None) -> dict[str, Any]:
    """Measure ``job``'s model (``artifact_path``, ``sha256``, ``op_profile``) on the phone
    of ``profile``: a result dict for ``benchmarking.store_run``; Aborted on an interrupt."""
    run = PhoneRun.of(profile, timeout_s)
    started = time.monotonic()
    isolation: dict[str, Any] = {"target": profile.execution.target,
                                 "timeout_s": run.timeout_s, "threads": run.threads,
                                 "cpu_affinity": list(run.cpu_affinity) or None}
    try:
        problems = adb_problems(run)
        if problems:
            return _failed("; ".join(problems), isolation=isolation)
        lease_s = run.timeout_s + _push_allowance_s([job["artifact_path"]])
        with _locked(run, profile, _what(job), lease_s, progress) as lock:
            isolation["device_lock"] = lock
            facts = device_facts(run)
            remote, pushed = push_model(run, job["artifact_path"], job["sha256"])
            isolation.update(model_path=remote, pushed=pushed)
            op_profile = bool(job.get("op_profile") or job.get("options", {}).get("op_profile"))
            code, output, pid = run_tool(run, remote, op_profile, progress)
    except AdbFailure as exc:
        return _failed(str(exc), isolation=isolation)
    except PhoneBusy as exc:
        return _failed(str(exc), isolation=isolation, phase="lock")
    except KeyboardInterrupt as exc:
        signum = signum_of(exc)
        partial = {"status": "aborted", "error": f"{reason(signum)}; benchmark_model stopped",
                   "warnings": [], "isolation": isolation}
        raise Aborted(f"benchmark {reason(signum)}; benchmark_model on {run.serial} was "
                      "stopped", result=partial, signum=signum) from None
    isolation.update(wall_s=round(time.monotonic() - started, 3), returncode=code,
                     remote_pid=pid or None)
    if code is None:
        return _failed(f"timed out after {run.timeout_s:g} s (benchmark_model on "
                       f"{run.serial} was killed)", isolation=isolation)
    try:
        log = parse_log(output, source=f"benchmark_model on {run.serial}")
    except LogFormatError as exc:
        detail = f" (exit code {code})" if code else ""
        return _failed(f"{exc}{detail}", isolation=isolation)
    result = _result(log, facts, isolation)
    result["warnings"] = list(job.get("notes") or []) + result["warnings"]
    if "took_over" in isolation.get("device_lock", {}):
        result["warnings"].append(takeover_warning(run.serial,
                                                   isolation["device_lock"]["took_over"]))
    if code:
        result["warnings"].append(f"benchmark_model exited with code {code} after printing "
                                  "its figures")
    return result


def _result(log: BenchmarkLog, facts: dict[str, Any], isolation: dict[str, Any]
            ) -> dict[str, Any]:
    result = result_from_log(log, {"origin": "adb", "serial": facts["serial"],
                                   "device": facts})
    result["environment"] = {**result["environment"], "device": facts,
                             "host": f"adb://{facts['serial']}"}
    result["isolation"] = isolation
    return result


def op_profiles_on_phone(profile: Profile, models: list[tuple[str, str]],
                         order: list[int]) -> list[BenchmarkLog]:
    """benchmark_model with ``--enable_op_profiling=true`` on the phone of ``profile``, once
    per entry of ``order`` (an index into ``models``, each ``(local path, sha256)``): whole
    runs alternated (e.g. A B B A), as close to side by side as one model per process
    allows. Raises MeasurementFailed with the reason, Aborted on an interrupt."""
    from devtrack.errors import MeasurementFailed

    run = PhoneRun.of(profile)
    try:
        problems = adb_problems(run)
        if problems:
            raise MeasurementFailed("; ".join(problems))
        lease_s = (run.timeout_s * len(order)
                   + _push_allowance_s([path for path, _ in models]))
        with _locked(run, profile, "per-operator measurement", lease_s, None):
            remote = [push_model(run, path, sha)[0] for path, sha in models]
            logs = []
            for index in order:
                code, output, _ = run_tool(run, remote[index], op_profile=True)
                if code is None:
                    raise MeasurementFailed(f"benchmark_model on {run.serial} timed out "
                                            f"after {run.timeout_s:g} s (killed)")
                try:
                    logs.append(parse_log(output, source=f"benchmark_model on {run.serial}"))
                except LogFormatError as exc:
                    raise MeasurementFailed(str(exc)) from None
    except PhoneBusy as exc:
        raise MeasurementFailed(str(exc)) from None
    except AdbFailure as exc:
        raise MeasurementFailed(str(exc)) from None
    except KeyboardInterrupt as exc:
        signum = signum_of(exc)
        raise Aborted(f"explain {reason(signum)}; benchmark_model on {run.serial} was "
                      "stopped", signum=signum) from None
    return logs


def phone_report(profile: Profile) -> tuple[bool | None, list[str], dict[str, Any]]:
    """For ``devtrack lab``: (reachable — None when the adb client itself is missing —, what
    the phone lacks, what it is: make, model, Android version, ABI). Never raises."""
    run = PhoneRun.of(profile)
    problems = adb_problems(run)
    if problems and "not found on this host" in problems[0]:
        return None, problems, {}
    if problems and ("not reachable" in problems[0] or "not ready" in problems[0]):
        return False, problems, {}
    facts = device_facts(run)
    info = {"host": f"adb://{run.serial}", **facts, "benchmark_model": run.benchmark_model}
    return True, problems, info


def phone_holder(profile: Profile) -> tuple[bool, dict[str, Any] | None]:
    """For ``devtrack lab``: (whether the phone's lock is held, who holds it when its holder
    file says); (False, None) when it cannot be read. One adb call."""
    try:
        return read_holder(_shell_runner(PhoneRun.of(profile)))
    except AdbFailure:
        return False, None
