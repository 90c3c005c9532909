"""A phone's lock: one measurement at a time per phone, across hosts, held on the phone itself.

``adb shell`` gives no open file to hold, so the lock is a directory made by an atomic
``mkdir`` (``core.adb_target.LOCK_DIR``; ``mkdir`` fails when it exists) with a holder file
in it: ``EXPIRES SINCE {json}`` — the lease's end and the start in the phone's clock (epoch
seconds), and who holds it (user@host, pid, what, a token). The lease is the measurement's
timeout plus margins, so the lock of a host that crashed, or lost the phone, goes stale and
the next measurement takes it over, saying so. Release removes the directory only while the
holder file still carries this measurement's token. Only POSIX shell and toybox's
``mkdir``, ``cat``, ``rm -r``, ``date +%s`` and ``printf`` run on the phone.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shlex
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from devtrack.bench.runner import Progress
from devtrack.core.adb_target import DEVICE_DIR, LOCK_DIR, LOCK_HOLDER
from devtrack.core.device_lock import busy_error, holder_text, waiting_phase

POLL_S = 0.5  # how often a busy phone is asked again
MARK = "DEVTRACK_LOCK"
EMPTY_GRACE_S = 10.0  # a lock directory without a holder file this long is stale
RELEASE_TIMEOUT_S = 5.0

Shell = Callable[[str, float], str]  # runs one `adb shell` command line: its stdout


class PhoneBusy(Exception):
    """The phone stayed locked past ``lock_timeout_s``; ``str()`` is the run's reason."""


def _q(text: str) -> str:
    return shlex.quote(text)


def acquire_script(holder_json: str, lease_s: float, stale_line: str | None) -> str:
    """One try at the lock; with ``stale_line``, first remove a lock whose holder file
    still reads exactly that (a lease judged expired)."""
    takeover = (f'if [ "$(cat {LOCK_HOLDER} 2>/dev/null)" = {_q(stale_line)} ]; then '
                f"rm -r {LOCK_DIR}; fi; " if stale_line is not None else "")
    write = f'printf "%s %s %s\\n" "$((now + {int(lease_s)}))" "$now" {_q(holder_json)}'
    return (f"mkdir -p {DEVICE_DIR} || exit 1; now=$(date +%s); {takeover}"
            f"if mkdir {LOCK_DIR} 2>/dev/null; then if {write} > {LOCK_HOLDER}; then "
            f'echo "{MARK} acquired $now"; else rm -r {LOCK_DIR}; echo "{MARK} unwritable"; '
            f'fi; else echo "{MARK} held $now"; cat {LOCK_HOLDER} 2>/dev/null; fi')


def release_script(token: str) -> str:
    return f'case "$(cat {LOCK_HOLDER} 2>/dev/null)" in *{token}*) rm -r {LOCK_DIR};; esac'


def read_script() -> str:
    return f'if [ -d {LOCK_DIR} ]; then echo "{MARK} held"; cat {LOCK_HOLDER} 2>/dev/null; fi; true'


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def parse_holder(line: str) -> dict[str, Any] | None:
    """The holder file's ``EXPIRES SINCE {json}`` as a dict (``expires_epoch``, ``since`` in
    the phone's clock); None for an empty or unreadable line."""
    parts = line.strip().split(" ", 2)
    if len(parts) != 3:
        return None
    try:
        expires, since, data = int(parts[0]), int(parts[1]), json.loads(parts[2])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {**data, "since": _iso(since), "expires_epoch": expires, "expires": _iso(expires)}


def read_holder(shell: Shell) -> tuple[bool, dict[str, Any] | None]:
    """(whether the phone is locked, who holds it if the holder file says) — one adb call."""
    lines = shell(read_script(), RELEASE_TIMEOUT_S * 2).splitlines()
    if not lines or not lines[0].startswith(f"{MARK} held"):
        return False, None
    return True, parse_holder(lines[1]) if len(lines) > 1 else None


def new_holder(what: str) -> dict[str, Any]:
    """This devtrack process as a holder: user@host, pid, what it measures, a fresh token."""
    return {"holder": f"{getpass.getuser()}@{socket.gethostname()}", "pid": os.getpid(),
            "what": what, "token": uuid.uuid4().hex}


@contextlib.contextmanager
def phone_locked(shell: Shell, holder: dict[str, Any], *, lease_s: float, timeout_s: float,
                 device: str, serial: str, step_timeout_s: float,
                 progress: Callable[[Progress], None] | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Hold the phone's lock in this block; the lock's record (waited_s, lease_s, took_over,
    held_s once released). Waits up to ``timeout_s`` for a busy phone, reporting who holds
    it through ``progress`` (which may raise Aborted); PhoneBusy when it stays busy."""
    record = _acquire(shell, holder, lease_s, timeout_s, device, serial, step_timeout_s,
                      progress)
    acquired = time.monotonic()
    try:
        yield record
    finally:
        record["held_s"] = round(time.monotonic() - acquired, 3)
        with contextlib.suppress(Exception):  # an unreachable phone: the lease ends it
            shell(release_script(holder["token"]), RELEASE_TIMEOUT_S)


def _acquire(shell: Shell, holder: dict[str, Any], lease_s: float, timeout_s: float,
             device: str, serial: str, step_timeout_s: float,
             progress: Callable[[Progress], None] | None) -> dict[str, Any]:
    holder_json = json.dumps(holder, sort_keys=True)
    started = time.monotonic()
    stale_line: str | None = None
    stale: dict[str, Any] | None = None
    empty_since: float | None = None
    seen: dict[str, Any] | None = None
    while True:
        tried_takeover = stale_line is not None
        lines = shell(acquire_script(holder_json, lease_s, stale_line),
                      step_timeout_s).splitlines()
        stale_line = None
        head = lines[0].split() if lines else []
        waited = time.monotonic() - started
        if head[:2] == [MARK, "acquired"]:
            record: dict[str, Any] = {"waited_s": round(waited, 3), "lease_s": int(lease_s),
                                      "acquired_epoch": int(head[2])}
            if tried_takeover:
                record["took_over"] = stale
            return record
        if head[:2] != [MARK, "held"] or len(head) < 3:
            detail = " ".join(lines)[:200] or "no answer"
            raise PhoneBusy(f"cannot take the lock {LOCK_DIR} on {serial}: {detail}")
        line = lines[1] if len(lines) > 1 else ""
        seen = parse_holder(line)
        now_epoch = int(head[2])
        if line.strip():
            empty_since = None
            if seen is None or seen["expires_epoch"] < now_epoch:
                stale_line, stale = line.strip(), seen  # an expired (or garbled) lease
        else:  # made but not written yet, or its maker died in between
            empty_since = empty_since if empty_since is not None else time.monotonic()
            if time.monotonic() - empty_since > EMPTY_GRACE_S:
                stale_line, stale = "", None
        if stale_line is not None and not tried_takeover:
            continue  # take it over at once
        if waited >= timeout_s:
            raise PhoneBusy(busy_error(seen, waited, "adb.lock_timeout_s", timeout_s))
        if progress is not None:
            progress(Progress(0, waiting_phase(device, seen), waited, None))
        time.sleep(POLL_S)


def takeover_warning(serial: str, stale: dict[str, Any] | None) -> str:
    """What a run says when it took over a stale lock."""
    if stale is None:
        return (f"took over the lock on {serial}: its holder file was empty or unreadable "
                f"(for {EMPTY_GRACE_S:g} s when empty)")
    return (f"took over a stale lock on {serial}: held by {holder_text(stale)}, its lease "
            f"ended at {stale.get('expires', '?')} (the phone's clock)")
