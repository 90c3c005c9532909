"""`devtrack lab`: the device profiles, whether each device is reachable and ready, who holds it.

SSH boards are probed with the bootstrap's probe (bench/device_probe.py); adb phones with
``bench.adb.adb_check`` (the client, the phone's state, benchmark_model, taskset), their
make and model and their lock's holder; a local profile is this host's Python, probed only
by ``lab check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devtrack.core.adb_target import is_adb
from devtrack.core.profile import Profile
from devtrack.core.targets import is_ssh, readiness_problems
from devtrack.errors import DeviceError, DeviceUnreachable

MAX_PARALLEL_PROBES = 8
INFO_KEYS = ("host", "cpu_model", "logical_cores", "machine", "kernel", "python",
             "python_version", "workdir")


@dataclass
class DeviceReport:
    """One profile's device: where it is, whether it answered, what it lacks, who holds it."""

    profile: str
    target: str
    reachable: bool | None = None  # None: a local profile, or not probed
    ready: bool = False
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # why it could not be reached, or why the profile is invalid
    info: dict[str, Any] = field(default_factory=dict)  # host, CPU, cores, python, …
    versions: dict[str, str | None] = field(default_factory=dict)  # numpy and the runtimes
    holder: dict[str, Any] | None = None  # who holds the device's lock now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _report_from_probe(profile: Profile, probe: dict[str, Any], device: str) -> DeviceReport:
    problems = readiness_problems(probe, profile.formats, device)
    lock = probe.get("lock") or {}
    return DeviceReport(
        profile=profile.name, target=profile.execution.target, reachable=True,
        ready=not problems, problems=problems,
        info={k: probe.get(k) for k in INFO_KEYS},
        versions={k: (probe.get(k) or {}).get("version")
                  for k in ("numpy", "onnxruntime", "litert")},
        holder=lock.get("holder") if lock.get("busy") else None)


def inspect_profile(profile: Profile) -> DeviceReport:
    """Probe the profile's device (this host for a local profile); never raises for an
    unreachable device: the report says why, with ssh's own message."""
    from devtrack.bench.device_probe import probe_device, probe_here

    target = profile.execution.target
    if is_adb(target):  # a phone: adb and LiteRT's benchmark_model, not a probe of Python
        from devtrack.bench.adb import phone_holder, phone_report

        reachable, problems, info = phone_report(profile)
        held, holder = phone_holder(profile) if reachable else (False, None)
        return DeviceReport(profile=profile.name, target=target, reachable=reachable,
                            ready=not problems, problems=problems,
                            error=problems[0] if reachable is not True and problems else None,
                            info=info, holder=(holder or {"holder": "unknown"}) if held else None)
    try:
        if is_ssh(target):
            from devtrack.bench.ssh_transport import SshDevice

            probe = probe_device(SshDevice.of(profile.name, target, profile.ssh))
        else:
            probe = probe_here()
    except DeviceUnreachable as exc:
        return DeviceReport(profile=profile.name, target=target, reachable=False,
                            error=str(exc), problems=[str(exc)])
    except DeviceError as exc:  # it answered, but its Python could not run the probe
        return DeviceReport(profile=profile.name, target=target, reachable=True,
                            error=str(exc), problems=[str(exc)])
    return _report_from_probe(profile, probe, profile.name)


def _parallel(items: Sequence[Any], work: Callable[[Any], DeviceReport]) -> list[DeviceReport]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(items))) as pool:
        return list(pool.map(work, items))


def check_devices(profiles: Sequence[Profile]) -> list[DeviceReport]:
    """``devtrack lab check``: every profile's device probed, in parallel."""
    return _parallel(profiles, inspect_profile)


def lab_overview(workspace_root: Path | None) -> list[DeviceReport]:
    """``devtrack lab``: every profile with its target; SSH devices and phones probed in
    parallel (reachable, who holds each board); local profiles are listed as they are, not
    probed."""
    from devtrack.profiles import list_profiles

    def one(entry: Any) -> DeviceReport:
        if entry.profile is None:
            return DeviceReport(profile=entry.name, target="?", error=entry.error)
        profile = entry.profile
        if not is_ssh(profile.execution.target) and not is_adb(profile.execution.target):
            return DeviceReport(profile=profile.name, target=profile.execution.target,
                                ready=True)
        return inspect_profile(profile)

    return _parallel(list_profiles(workspace_root), one)
