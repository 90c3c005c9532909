"""Android phones as measurement targets: ``adb://SERIAL`` and the profile's ``[adb]`` table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtrack.core.device_lock import DEFAULT_LOCK_TIMEOUT_S

ADB_SCHEME = "adb://"
DEFAULT_BENCHMARK_MODEL = "/data/local/tmp/benchmark_model"
DEVICE_DIR = "/data/local/tmp/devtrack"  # models cached here by sha256
LOCK_DIR = f"{DEVICE_DIR}/lock"  # the phone's lock: created by an atomic mkdir
LOCK_HOLDER = f"{LOCK_DIR}/holder"  # "EXPIRES_EPOCH {json}": who holds it, until when
# Serials as adb prints them: "emulator-5554", "R58M123ABC", "192.168.1.20:5555".
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
# A path on the phone that goes into an `adb shell` command line unquoted-safe.
_DEVICE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]+$")


@dataclass(frozen=True)
class AdbSettings:
    """The ``[adb]`` table: where benchmark_model is on the phone, which adb to use here."""

    benchmark_model: str = DEFAULT_BENCHMARK_MODEL  # pushed once by the user
    adb: str = "adb"  # the adb client on this host: a name on PATH or a path
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S  # wait this long for a busy phone


def is_adb(target: str) -> bool:
    return target.startswith(ADB_SCHEME)


def serial_of(target: str) -> str:
    """The device serial of an ``adb://SERIAL`` target."""
    return target[len(ADB_SCHEME):]


def adb_target_problem(target: str) -> str | None:
    """Why ``target`` is not a valid ``adb://SERIAL``, or None."""
    serial = serial_of(target)
    if not serial:
        return f"{target!r} names no device; write adb://SERIAL (as `adb devices` lists it)"
    if not _SERIAL.match(serial):
        return (f"{target!r}: {serial!r} is not a device serial (letters, digits, '.', '_', "
                "':' and '-', as `adb devices` lists it)")
    return None


def device_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name benchmark_model on the phone, or None."""
    if not _DEVICE_PATH.match(path):
        return (f"{path!r} is not an absolute path on the phone made of letters, digits and "
                "'._/+-', e.g. \"/data/local/tmp/benchmark_model\"")
    return None
