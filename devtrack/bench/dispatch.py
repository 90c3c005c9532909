"""Run a job where its profile says: on this host (``runner.run_job``) or on its SSH device.

The one seam between the library and where measurements happen: ``bench``, ``check``,
``compare --rerun``, ``explain`` and accuracy runs all come through here, so a profile whose
``execution.target`` is ``ssh://…`` measures on the device in every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devtrack.bench.runner import Progress, run_job
from devtrack.core.profile import Profile
from devtrack.core.targets import is_ssh


def run_profile_job(profile: Profile, job: dict[str, Any], *, threads: int,
                    cpu_affinity: list[int] | None, memory_limit_mb: float | None,
                    timeout_s: float, progress: Callable[[Progress], None] | None = None
                    ) -> dict[str, Any]:
    """``run_job``'s contract, on the profile's target.

    For a device, ``cpu_affinity`` is the profile's own list: the device clamps it to the
    cores it has (callers may have clamped it to this host's)."""
    target = profile.execution.target
    if is_ssh(target):
        from devtrack.bench.remote import run_remote_job
        from devtrack.bench.ssh_transport import SshDevice

        device = SshDevice.of(profile.name, target, profile.ssh)
        return run_remote_job(job, device, threads=threads,
                              cpu_affinity=list(profile.execution.cpu_affinity) or None,
                              memory_limit_mb=memory_limit_mb, timeout_s=timeout_s,
                              progress=progress)
    return run_job(job, threads=threads, cpu_affinity=cpu_affinity,
                   memory_limit_mb=memory_limit_mb, timeout_s=timeout_s, progress=progress)
