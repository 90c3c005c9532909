"""On a device, before devtrack's code is there: probe the interpreter, list and receive files.

This file's source is sent as ``python3 -c SOURCE COMMAND ARGS`` (``bench/ssh_transport.py``),
so it imports nothing of devtrack and runs on the device's Python (3.9 or newer). Commands:

- ``probe WORKDIR``: one JSON line: the interpreter, host, CPU, cores, kernel, numpy and
  runtime versions (or why each cannot be imported), the workdir, and who holds the lock.
- ``have WORKDIR NAME...``: one JSON line: the workdir's absolute path and which of the
  names (``app/…``, ``blobs/SHA256``) it holds.
- ``receive WORKDIR``: reads files from stdin, each a JSON header line
  ``{"name", "size", "sha256"}`` then its bytes; writes each beside its place, checks the
  sha256 and renames it into place, so a cut transfer leaves no file under its real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from typing import Any, BinaryIO

LOCK_NAME = "device.lock"
INCOMING_PREFIX = ".incoming-"
STALE_INCOMING_S = 3600.0


def resolve_workdir(workdir: str) -> str:
    """The device's workdir: as given (``~`` expanded), else its user's cache."""
    if workdir:
        return os.path.expanduser(workdir)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "devtrack")


def _version_of(module: str) -> dict[str, Any]:
    try:
        mod = __import__(module, fromlist=["__version__"])
    except Exception as exc:  # any import failure is what the user needs to read
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {"ok": True, "version": str(getattr(mod, "__version__", "unknown"))}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def lock_holder(workdir: str) -> dict[str, Any]:
    """``{"busy": bool, "holder": {...} | None}``: the lock is tried, never waited for."""
    path = os.path.join(workdir, LOCK_NAME)
    if not os.path.exists(path):
        return {"busy": False, "holder": None}
    try:
        import fcntl
    except ImportError:
        return {"busy": False, "holder": None}
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return {"busy": False, "holder": None}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            busy = True
        else:
            busy = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        holder = None
        if busy:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "null")
            except (OSError, ValueError):
                holder = None
        return {"busy": busy, "holder": holder}
    finally:
        os.close(fd)


def probe(workdir: str) -> dict[str, Any]:
    root = os.path.abspath(resolve_workdir(workdir))
    existing = root
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # nothing is created: a probe changes nothing
    writable = os.access(existing, os.W_OK)
    litert = _version_of("ai_edge_litert")
    if not litert["ok"]:
        for fallback in ("tflite_runtime", "tensorflow"):
            found = _version_of(fallback)
            if found["ok"]:
                litert = dict(found, module=fallback)
                break
    return {
        "python": sys.executable, "python_version": platform.python_version(),
        "host": platform.node(), "machine": platform.machine(), "kernel": platform.release(),
        "os": platform.platform(), "cpu_model": _cpu_model(), "logical_cores": os.cpu_count(),
        "numpy": _version_of("numpy"), "onnxruntime": _version_of("onnxruntime"),
        "litert": litert, "workdir": root, "workdir_writable": writable,
        "lock": lock_holder(root),
    }


def have(workdir: str, names: list[str]) -> dict[str, Any]:
    root = os.path.abspath(resolve_workdir(workdir))
    os.makedirs(root, exist_ok=True)
    return {"workdir": root, "have": [n for n in names if os.path.isfile(os.path.join(root, n))]}


def _clean_stale(folder: str) -> None:
    """Remove partial copies an interrupted ``receive`` left over an hour ago."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        path = os.path.join(folder, entry)
        try:
            if entry.startswith(INCOMING_PREFIX) and (
                    time.time() - os.path.getmtime(path) > STALE_INCOMING_S):
                os.unlink(path)
        except OSError:
            pass


def receive(workdir: str, stream: BinaryIO) -> int:
    root = resolve_workdir(workdir)
    count = 0
    while True:
        line = stream.readline()
        if not line:
            return count
        header = json.loads(line.decode("utf-8"))
        name, size, expected = header["name"], int(header["size"]), header["sha256"]
        if name.startswith("/") or ".." in name.split("/"):
            raise SystemExit(f"refusing to write {name!r} outside the workdir")
        final = os.path.join(root, name)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        _clean_stale(folder)
        tmp = os.path.join(folder, f"{INCOMING_PREFIX}{os.getpid()}-{os.path.basename(name)}")
        digest = hashlib.sha256()
        left = size
        with open(tmp, "wb") as out:
            while left:
                chunk = stream.read(min(left, 1 << 20))
                if not chunk:
                    os.unlink(tmp)
                    raise SystemExit(f"{name}: the transfer ended {left} bytes early")
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            os.unlink(tmp)
            raise SystemExit(f"{name}: sha256 mismatch after transfer")
        os.replace(tmp, final)
        count += 1


def main(argv: list[str]) -> int:
    command, workdir, rest = argv[0], argv[1], argv[2:]
    if command == "probe":
        out: Any = probe(workdir)
    elif command == "have":
        out = have(workdir, rest)
    elif command == "receive":
        out = receive(workdir, sys.stdin.buffer)
    else:
        sys.stderr.write(f"unknown command {command!r}\n")
        return 2
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
