"""On the device, inside the shipped zipapp: hold the device lock, run the worker, report.

``python3 devtrack-….pyz supervise WORKDIR`` reads one JSON line from stdin (the job, its
limits, who asks, how long to wait for the lock), takes an exclusive ``flock`` on
``WORKDIR/device.lock`` (waiting up to ``lock_timeout_s``, saying who holds it), writes the
holder into it, and runs the job with ``bench.runner.run_job`` exactly as devtrack does on
its own host: a fresh worker with its threads, affinity, resident-memory cap, timeout and
phase file, here. Events go to stdout as ``@devtrack {json}`` lines (``hello``, ``waiting``,
``locked``, ``progress`` at least once a second, then ``result`` with every sample).

Stdin stays open for the whole measurement: when it closes (devtrack stopped, the
connection dropped) the worker is killed and the supervisor exits, so the lock, held by
this process's open file, is released by the kernel whatever happens. SIGTERM and SIGHUP
stop the worker the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

EVENT_PREFIX = "@devtrack "
LOCK_NAME = "device.lock"
HEARTBEAT_S = 1.0
LOCK_POLL_S = 0.2
GONE_GRACE_S = 10.0  # after stdin closes, exit even if the worker does not stop cleanly


class _Channel:
    """Events out to devtrack; whether devtrack is still there (stdin open)."""

    def __init__(self) -> None:
        self.gone = threading.Event()
        self._lock = threading.Lock()

    def send(self, event: str, **fields: Any) -> None:
        line = EVENT_PREFIX + json.dumps({"event": event, **fields}) + "\n"
        with self._lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (OSError, ValueError):
                self.gone.set()

    def watch_stdin(self) -> None:
        """Set ``gone`` when stdin reaches its end; then make sure this process ends."""
        def watch() -> None:
            with contextlib.suppress(OSError, ValueError):
                while sys.stdin.buffer.read(4096):
                    pass
            self.gone.set()
            time.sleep(GONE_GRACE_S)
            os._exit(3)  # the worker dies with us (PR_SET_PDEATHSIG), the flock goes too

        threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _now() -> str:
    """The format of devtrack's stored times (``store_contract.utc_now``): comparable."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _acquire(path: str, holder: dict[str, Any], timeout_s: float,
             channel: _Channel) -> tuple[int | None, float, dict[str, Any] | None]:
    """(open lock fd or None, seconds waited, the last holder seen)."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    last_said = -HEARTBEAT_S
    seen: dict[str, Any] | None = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            holder["since"] = _now()
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
            return fd, time.monotonic() - started, seen
        waited = time.monotonic() - started
        with contextlib.suppress(OSError, ValueError):
            seen = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "null") or seen
        if waited >= timeout_s or channel.gone.is_set():
            os.close(fd)
            return None, waited, seen
        if waited - last_said >= HEARTBEAT_S:
            channel.send("waiting", holder=seen, waited_s=round(waited, 1))
            last_said = waited
        time.sleep(LOCK_POLL_S)


def _holder_text(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    what = f" ({holder['what']})" if holder.get("what") else ""
    return (f"{holder.get('holder', '?')} pid {holder.get('pid', '?')} since "
            f"{holder.get('since', '?')}{what}")


def supervise(workdir: str, channel: _Channel) -> None:
    from devtrack.bench.device_bootstrap import resolve_workdir
    from devtrack.bench.runner import Progress, run_job, stop_when
    from devtrack.errors import Aborted
    from devtrack.interrupts import signals_interrupt

    line = sys.stdin.buffer.readline()
    if not line.strip():
        return  # devtrack hung up before it sent the job: nothing to do, nothing locked
    request = json.loads(line.decode("utf-8"))
    channel.watch_stdin()
    root = resolve_workdir(workdir)
    os.makedirs(root, exist_ok=True)
    limits = request["limits"]
    holder = {**request.get("holder", {}), "device_pid": os.getpid()}
    fd, waited, seen = _acquire(os.path.join(root, LOCK_NAME), holder,
                                float(request.get("lock_timeout_s", 0)), channel)
    if fd is None:
        if channel.gone.is_set():
            return
        channel.send("result", result={
            "status": "failed", "warnings": [], "phase": "lock",
            "error": f"device busy: held by {_holder_text(seen)}; waited {waited:.0f} s "
                     f"(ssh.lock_timeout_s = {float(request.get('lock_timeout_s', 0)):g})"})
        return
    channel.send("locked", waited_s=round(waited, 3), at=holder["since"])
    last: dict[str, Any] = {"phase": None, "at": 0.0}

    def report(p: Progress) -> None:
        now = time.monotonic()
        if p.phase != last["phase"] or now - last["at"] >= HEARTBEAT_S:
            channel.send("progress", pid=p.pid, phase=p.phase, elapsed_s=round(p.elapsed_s, 2),
                         rss_mb=round(p.rss_mb, 1) if p.rss_mb is not None else None)
            last["phase"], last["at"] = p.phase, now

    try:
        with signals_interrupt(), stop_when(channel.gone.is_set):
            result = run_job(request["job"], threads=int(limits["threads"]),
                             cpu_affinity=limits.get("cpu_affinity"),
                             memory_limit_mb=limits.get("memory_limit_mb"),
                             timeout_s=float(limits["timeout_s"]), progress=report)
    except Aborted as exc:
        result = {**exc.result, "status": "aborted", "error": str(exc)}
    except KeyboardInterrupt:  # a signal outside run_job's own handling
        result = {"status": "aborted", "error": "stopped on the device", "warnings": []}
    lock = {"waited_s": round(waited, 3), "acquired_at": holder["since"], "released_at": _now()}
    result.setdefault("isolation", {})["device_lock"] = lock
    channel.send("result", result=result)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "supervise":
        sys.stderr.write("usage: python3 devtrack.pyz supervise WORKDIR\n")
        return 2
    channel = _Channel()
    channel.send("hello", pid=os.getpid(), python=sys.executable)
    supervise(args[1], channel)
    return 0
