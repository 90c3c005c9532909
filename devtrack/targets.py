"""Where a profile's measurements run: each target scheme's job runner and device key.

A profile's ``[execution] target`` names where its worker runs: ``local`` (this host),
``ssh://[user@]host[:port]`` (a board, bench/remote.py) or ``adb://SERIAL`` (a phone,
bench/adb.py). Each scheme registers a
:class:`Target`: ``run`` measures one protocol job (``bench/protocol.py``) and returns its
result dict, as ``bench.runner.run_job`` does; ``device_key`` names the device a profile
measures on. The bench orchestration (``orchestration.py``) runs one job per device key at a
time and different device keys in parallel, so every local profile shares the key ``local``
(local measurements never overlap), and by default any other distinct target string is a
device of its own.

Every measurement reaches its device through here: ``bench`` and ``check --bench``
(``orchestration.py``, ``benchmarking.run_measurement``) and the side-by-side jobs of
``compare --rerun``, ``check``, ``explain`` and ``bisect`` (``pairing.run_pair_job``); a
runner gets each protocol job whatever its mode (single, ``pair``, ``op_pair``).

Built-in schemes are imported only when a profile uses them (``BUILTIN_TARGETS``, "module:
attribute"); tests and plugins call :func:`register_target`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtrack.errors import UsageError

if TYPE_CHECKING:
    from devtrack.bench.runner import Progress
    from devtrack.core.profile import Profile

LOCAL = "local"


@dataclass(frozen=True)
class TargetJob:
    """One measurement handed to a target's runner."""

    job: dict[str, Any]  # the protocol job (``protocol.MeasureJob.to_dict()``)
    profile: Profile  # as it runs (overrides applied): threads, affinity, cap, [ssh]/[adb]
    timeout_s: float  # the wall limit: the profile's timeout_s plus any evaluation allowance
    progress: Callable[[Progress], None] | None = None  # call on every poll; it may raise
    # Aborted (a stop request): stop the worker and raise it with ``result`` = what is known


JobRunner = Callable[[TargetJob], dict[str, Any]]
DeviceKey = Callable[["Profile"], str]


def target_string(profile: Profile) -> str:
    """The default device key: the target string itself."""
    return profile.execution.target


@dataclass(frozen=True)
class Target:
    """A target scheme: how to run a job there, and which device a profile measures on."""

    scheme: str
    run: JobRunner
    device_key: DeviceKey = target_string


def run_local(task: TargetJob) -> dict[str, Any]:
    """A fresh worker process on this host, confined as the profile says."""
    from devtrack.bench.runner import run_job

    execution = task.profile.execution
    return run_job(task.job, threads=execution.threads,
                   cpu_affinity=list(execution.cpu_affinity) or None,
                   memory_limit_mb=execution.memory_limit_mb, timeout_s=task.timeout_s,
                   progress=task.progress)


LOCAL_TARGET = Target(LOCAL, run_local, lambda profile: LOCAL)


def run_on_adb(task: TargetJob) -> dict[str, Any]:
    """LiteRT's benchmark_model on the phone of an ``adb://SERIAL`` profile (bench/adb.py);
    the device key is the target string: one measurement per phone at a time."""
    from devtrack.bench.adb import run_on_phone

    return run_on_phone(task.job, task.profile, task.timeout_s, task.progress)


ADB_TARGET = Target("adb", run_on_adb)


def run_on_ssh(task: TargetJob) -> dict[str, Any]:
    """The worker on the board of an ``ssh://[user@]host[:port]`` profile, shipped and
    supervised there (bench/remote.py); the device pins to the profile's own cores as far as
    it has them. The device key is the target string: one measurement per board at a time
    (the device's own lock also keeps other hosts' devtrack out)."""
    from devtrack.bench.remote import run_remote_job
    from devtrack.bench.ssh_transport import SshDevice

    profile = task.profile
    device = SshDevice.of(profile.name, profile.execution.target, profile.ssh)
    return run_remote_job(task.job, device, threads=profile.execution.threads,
                          cpu_affinity=list(profile.execution.cpu_affinity) or None,
                          memory_limit_mb=profile.execution.memory_limit_mb,
                          timeout_s=task.timeout_s, progress=task.progress)


def ssh_device(profile: Profile) -> str:
    """An SSH board's device key: its host and port (``ssh://pi@board`` and
    ``ssh://board:22`` are one board; the user does not make another device)."""
    from devtrack.core.targets import parse_ssh_target

    target = parse_ssh_target(profile.execution.target)
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"ssh://{host}:{target.port or 22}"


SSH_TARGET = Target("ssh", run_on_ssh, ssh_device)

# scheme -> "module:attribute" of its Target, imported when a profile first uses it.
BUILTIN_TARGETS: dict[str, str] = {LOCAL: "devtrack.targets:LOCAL_TARGET",
                                   "adb": "devtrack.targets:ADB_TARGET",
                                   "ssh": "devtrack.targets:SSH_TARGET"}
_registered: dict[str, Target] = {}


def scheme_of(target: str) -> str:
    """``local`` → ``local``; ``ssh://pi@board`` → ``ssh``."""
    scheme, sep, _ = target.partition("://")
    return scheme if sep else target


def register_target(target: Target) -> None:
    """Make ``target.scheme`` runnable (replacing a registration of the same scheme)."""
    _registered[target.scheme] = target


@contextmanager
def registered_target(target: Target) -> Iterator[None]:
    """``target`` registered inside the block, whatever was registered before back after it."""
    previous = _registered.get(target.scheme)
    register_target(target)
    try:
        yield
    finally:
        if previous is None:
            _registered.pop(target.scheme, None)
        else:
            _registered[target.scheme] = previous


def target_for(profile: Profile) -> Target:
    """The registered target of the profile's ``execution.target``; UsageError naming the
    profile when no runner serves its scheme."""
    scheme = scheme_of(profile.execution.target)
    if scheme in _registered:
        return _registered[scheme]
    spec = BUILTIN_TARGETS.get(scheme)
    if spec is None:
        known = ", ".join(sorted({*BUILTIN_TARGETS, *_registered}))
        raise UsageError(f"profile {profile.name}: no runner for target "
                         f"{profile.execution.target!r} (known: {known})")
    module, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    assert isinstance(target, Target)
    _registered.setdefault(scheme, target)
    return _registered[scheme]


def device_of(profile: Profile) -> str:
    """The device ``profile`` measures on: one measurement per device at a time."""
    return target_for(profile).device_key(profile)
