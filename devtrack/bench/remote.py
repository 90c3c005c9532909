"""The parent side of a measurement on an SSH device: ship, lock, run, watch, bring the result back.

What ``runner.run_job`` does on this host, ``run_remote_job`` has done on the device: the
shipped supervisor (``bench/device_supervisor.py``, inside the zipapp of
``bench/shipment.py``) takes the device's lock and calls ``run_job`` there, so threads,
affinity, the memory cap, the timeout, the phases and the environment snapshot are the
device's. Files go first: the zipapp and every file the job names (artifacts, datasets,
references), each cached on the device by sha256 and sent only when missing; the job's paths
are rewritten to the device's copies and back in the result.

Same contract as ``run_job``: whatever happens the caller gets a result dict with
``status`` and a one-line ``error``; an unreachable device, a refused key, a dropped link, a
busy device past ``lock_timeout_s`` are failed results that say so, each bounded in time by a
local watchdog. Ctrl-C, SIGTERM and SIGHUP (inside ``interrupts.signals_interrupt``) hang up
the session, which stops the device's worker, and raise Aborted.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import queue
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from devtrack.bench import ssh_transport as ssh
from devtrack.bench.runner import MEMORY_CAP_METHOD, Progress, stop_requested
from devtrack.bench.shipment import Shipment, build_shipment
from devtrack.bench.ssh_transport import SshDevice
from devtrack.core.device_lock import waiting_phase
from devtrack.errors import Aborted, DeviceError
from devtrack.interrupts import reason, signum_of

EVENT_PREFIX = "@devtrack "
POLL_S = 0.1
SILENCE_S = 20.0  # the supervisor speaks at least once a second; this long silent = lost
HANG_UP_WAIT_S = 5.0  # after closing the session's stdin, for the device to stop the worker
MIN_RATE_BPS = 256 * 1024  # an upload slower than this counts as hung
PATH_KEYS = ("artifact_path", "path")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def job_files(job: Any) -> dict[str, str]:
    """Local path → sha256 of every file the job names (an ``artifact_path`` or ``path``,
    with its ``sha256`` beside it when the library knows it)."""
    found: dict[str, str] = {}
    if isinstance(job, dict):
        for key in PATH_KEYS:
            path = job.get(key)
            if isinstance(path, str) and path:
                sha = job.get("sha256")
                if not (isinstance(sha, str) and len(sha) == 64):
                    sha = _sha256_file(Path(path)) if Path(path).is_file() else ""
                if sha:
                    found[path] = sha.lower()
        for value in job.values():
            found.update(job_files(value))
    elif isinstance(job, list):
        for value in job:
            found.update(job_files(value))
    return found


def _replace_strings(data: Any, mapping: dict[str, str]) -> Any:
    if isinstance(data, str):
        for old, new in mapping.items():
            if old in data:
                data = data.replace(old, new)
        return data
    if isinstance(data, dict):
        return {k: _replace_strings(v, mapping) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace_strings(v, mapping) for v in data]
    return data


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _chunks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def _upload(device: SshDevice, root: str, items: list[tuple[str, Path | bytes, str]]) -> int:
    """Send ``(name, local file or bytes, sha256)`` items in one ssh session; bytes sent."""
    total = sum(_size(source) for _, source, _ in items)
    limit = ssh.step_timeout(device, total / MIN_RATE_BPS)
    argv = ssh.ssh_argv(device, ssh.python_command(device, ssh.bootstrap_source(),
                                                   ["receive", root]))
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        failure: list[BaseException] = []

        def feed() -> None:
            assert proc.stdin is not None
            try:
                for name, source, sha in items:
                    header = {"name": name, "size": _size(source), "sha256": sha}
                    proc.stdin.write((json.dumps(header) + "\n").encode("utf-8"))
                    for chunk in _chunks(source):
                        proc.stdin.write(chunk)
                proc.stdin.close()
            except (OSError, ValueError) as exc:
                failure.append(exc)

        writer = threading.Thread(target=feed, name="upload", daemon=True)
        writer.start()
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            ssh.stop(proc)
            raise DeviceError(f"{device.label}: sending {len(items)} file(s) ({total} bytes) "
                              f"did not finish within {limit:.0f} s; the link is hung or too "
                              "slow") from None
        except BaseException:
            ssh.stop(proc)
            raise
        writer.join(timeout=5)
        err.seek(0)
        message = ssh.last_line(err.read().decode("utf-8", errors="replace"))
    if proc.returncode != 0:
        if proc.returncode == 255:
            raise DeviceError(f"cannot reach {device.label}: {message or 'ssh failed'}")
        raise DeviceError(f"{device.label}: sending files failed on the device: "
                          f"{message or f'exit {proc.returncode}'}")
    return total


def prepare(device: SshDevice, app: Shipment, job: dict[str, Any]
            ) -> tuple[dict[str, Any], dict[str, str], str, int]:
    """Make sure the device holds the zipapp and every file of ``job``.

    Returns (the job with device paths, device path → local path, the device's workdir,
    bytes sent)."""
    files = job_files(job)
    names = [f"app/{app.name}", *(f"blobs/{sha}" for sha in sorted(set(files.values())))]
    out = ssh.run_step(device, ssh.python_command(
        device, ssh.bootstrap_source(), ["have", device.settings.workdir, *names]),
        what="listing the device's cache")
    try:
        answer = json.loads(out.strip().splitlines()[-1])
        root, have = str(answer["workdir"]), set(answer["have"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise DeviceError(f"{device.label}: unreadable answer from the device's Python "
                          f"({device.settings.python}): {out.strip()[:200]!r}") from None
    missing: list[tuple[str, Path | bytes, str]] = []
    if f"app/{app.name}" not in have:
        missing.append((f"app/{app.name}", app.data, app.sha256))
    seen: set[str] = set()
    for path, sha in files.items():
        if f"blobs/{sha}" not in have and sha not in seen:
            missing.append((f"blobs/{sha}", Path(path), sha))
            seen.add(sha)
    sent = _upload(device, root, missing) if missing else 0
    to_device = {path: f"{root}/blobs/{sha}" for path, sha in files.items()}
    back = {device_path: path for path, device_path in to_device.items()}
    return _rewrite_paths(job, to_device), back, root, sent


def _rewrite_paths(data: Any, to_device: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: (to_device.get(v, v) if k in PATH_KEYS and isinstance(v, str)
                    else _rewrite_paths(v, to_device)) for k, v in data.items()}
    if isinstance(data, list):
        return [_rewrite_paths(v, to_device) for v in data]
    return data


@contextlib.contextmanager
def _session(argv: list[str]
             ) -> Iterator[tuple[subprocess.Popen[bytes], queue.Queue[str | None], list[str]]]:
    """ssh running the supervisor; a queue of its stdout lines (None at the end) and the
    tail of its stderr. Leaving the block hangs up: stdin closed, a grace period for the
    device to stop its worker, then ssh killed."""
    proc = ssh.start(argv)
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def pump(stream: IO[bytes], sink: Callable[[str], None], end: Callable[[], None]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", errors="replace").rstrip("\n"))
        end()

    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=pump, args=(proc.stdout, lines.put, lambda: lines.put(None)),
                     daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr, lambda s: errors.append(s) if len(
        errors) < 200 else None, lambda: None), daemon=True).start()
    try:
        yield proc, lines, errors
    finally:
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=HANG_UP_WAIT_S)
        except subprocess.TimeoutExpired:
            ssh.stop(proc)
        except BaseException:  # a second Ctrl-C while waiting: stop now, and say so
            ssh.stop(proc)
            raise


def _watch(device: SshDevice, proc: subprocess.Popen[bytes], lines: queue.Queue[str | None],
           errors: list[str],
           request: dict[str, Any], progress: Callable[[Progress], None] | None,
           state: dict[str, Any]) -> dict[str, Any]:
    """Send the request, follow the events, return the device's result (or a failure)."""
    stdin = proc.stdin
    assert stdin is not None

    def send() -> None:  # in a thread: a device that never reads must not block us here
        with contextlib.suppress(OSError, ValueError):  # a dead session shows as its end
            stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            stdin.flush()

    threading.Thread(target=send, name="send-job", daemon=True).start()
    started = time.monotonic()
    s = device.settings
    hello_by = started + s.connect_timeout_s + ssh.STEP_SLACK_S
    end_by = hello_by + s.lock_timeout_s + float(request["limits"]["timeout_s"]) + ssh.STEP_SLACK_S
    heard = started
    while True:
        try:
            line = lines.get(timeout=POLL_S)
        except queue.Empty:
            line = ""
        now = time.monotonic()
        if line is None:  # the session ended
            break
        if line.startswith(EVENT_PREFIX):
            heard = now
            try:
                event = dict(json.loads(line[len(EVENT_PREFIX):]))
            except (ValueError, TypeError):
                event = {}  # a garbled line is ignored; silence is what counts as lost
            kind = event.get("event")
            if kind == "result":
                return dict(event["result"])
            if kind == "hello":
                state["hello"] = True
            elif kind == "waiting":
                state["phase"] = waiting_phase(device.name, event.get("holder"))
            elif kind == "locked":
                state["phase"], state["locked"] = "starting", True
            elif kind == "progress":
                state["phase"], state["pid"] = event.get("phase") or "", event.get("pid", 0)
                state["rss_mb"] = event.get("rss_mb")
        if progress is not None:
            progress(Progress(int(state.get("pid") or 0), state.get("phase", ""),
                              now - started, state.get("rss_mb")))
        if stop_requested():
            raise Aborted("measurement stopped on request; the worker process was stopped")
        if not state.get("hello") and now > hello_by:
            return _failed(f"{device.label}: the device's Python did not start the "
                           f"measurement within {hello_by - started:.0f} s")
        if state.get("hello") and now - heard > SILENCE_S:
            return _failed(f"lost the connection to {device.label}: no word from the device "
                           f"for {SILENCE_S:g} s during {state.get('phase') or 'start-up'}")
        if now > end_by:
            return _failed(f"{device.label}: the measurement did not end within "
                           f"{end_by - started:.0f} s (lock wait + timeout_s + margins)")
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=HANG_UP_WAIT_S)
    message = ssh.last_line("\n".join(errors))
    elapsed = time.monotonic() - started
    if not state.get("hello"):
        if proc.returncode == 255:
            return _failed(f"cannot reach {device.label}: {message or 'ssh failed (exit 255)'}")
        return _failed(f"{device.label}: the device could not start the measurement (exit "
                       f"{proc.returncode}): {message or 'no message'}")
    return _failed(f"lost the connection to {device.label} during "
                   f"{state.get('phase') or 'start-up'} after {elapsed:.1f} s: "
                   f"{message or 'the session ended without a result'} (ssh exit "
                   f"{proc.returncode})")


def _failed(error: str) -> dict[str, Any]:
    return {"status": "failed", "error": error, "warnings": []}


def _what(job: dict[str, Any]) -> str:
    if "pair" in job:
        return "side-by-side measurement"
    if "op_pair" in job:
        return "per-operator measurement"
    return f"measurement of {str(job.get('sha256', ''))[:12]}"


def run_remote_job(job: dict[str, Any], device: SshDevice, *, threads: int,
                   cpu_affinity: list[int] | None, memory_limit_mb: float | None,
                   timeout_s: float, progress: Callable[[Progress], None] | None = None
                   ) -> dict[str, Any]:
    """Run ``job`` on ``device`` as ``runner.run_job`` runs it here; its result dict.

    The device pins to ``cpu_affinity`` as far as its own cores allow (``clamp_affinity``
    runs there). Raises Aborted on Ctrl-C (and SIGTERM/SIGHUP inside
    ``interrupts.signals_interrupt``) after hanging up, which stops the device's worker.
    """
    isolation: dict[str, Any] = {
        "transport": "ssh", "target": str(device.target), "device": device.name,
        "threads": threads, "cpu_affinity": cpu_affinity, "memory_limit_mb": memory_limit_mb,
        "memory_limit_method": (f"{MEMORY_CAP_METHOD}, on the device" if memory_limit_mb
                                else None),
        "timeout_s": timeout_s,
    }
    started = time.monotonic()
    state: dict[str, Any] = {}
    back: dict[str, str] = {}
    try:
        app = build_shipment()
        device_job, back, root, sent = prepare(device, app, job)
        isolation.update(app=app.name, workdir=root, sent_bytes=sent)
        request = {
            "job": device_job,
            "limits": {"threads": threads, "cpu_affinity": cpu_affinity,
                       "memory_limit_mb": memory_limit_mb, "timeout_s": timeout_s},
            "holder": {"holder": f"{getpass.getuser()}@{socket.gethostname()}",
                       "pid": os.getpid(), "what": _what(job)},
            "lock_timeout_s": device.settings.lock_timeout_s,
        }
        argv = ssh.ssh_argv(device, [device.settings.python, f"{root}/app/{app.name}",
                                     "supervise", root])
        with _session(argv) as (proc, lines, errors):
            result = _watch(device, proc, lines, errors, request, progress, state)
    except DeviceError as exc:
        result = _failed(str(exc))
    except OSError as exc:  # a file the job names could not be read here
        result = _failed(f"cannot send the job's files to {device.label}: {exc}")
    except KeyboardInterrupt as exc:
        signum = signum_of(exc)
        isolation["ssh_wall_s"] = round(time.monotonic() - started, 3)
        partial = {"status": "aborted", "error": f"{reason(signum)}; worker stopped",
                   "phase": state.get("phase", ""), "warnings": [], "isolation": isolation}
        raise Aborted(f"benchmark {reason(signum)}; the worker process on {device.label} was "
                      "stopped", result=partial, signum=signum) from None
    except Aborted as exc:
        exc.result = {"status": "aborted", "error": str(exc), "warnings": [],
                      "phase": state.get("phase", ""), "isolation": isolation}
        raise
    result = _replace_strings(result, back)
    if result.get("status") != "ok" and not result.get("phase"):
        result["phase"] = state.get("phase", "")
    device_isolation = result.get("isolation") or {}
    isolation.update({k: v for k, v in device_isolation.items() if k not in isolation
                      or k == "cpu_affinity"})
    isolation["ssh_wall_s"] = round(time.monotonic() - started, 3)
    result["isolation"] = isolation
    result["warnings"] = list(result.get("warnings") or [])
    return result

