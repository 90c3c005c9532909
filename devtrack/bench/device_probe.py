"""What a device is and what its Python can import: the bootstrap's probe, over ssh or here."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from devtrack.bench import ssh_transport as ssh
from devtrack.bench.ssh_transport import SshDevice
from devtrack.errors import DeviceError

LOCAL_PROBE_TIMEOUT_S = 60.0


def _answer(out: str, where: str) -> dict[str, Any]:
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError, TypeError):
        raise DeviceError(f"{where}: unreadable answer from the probe: "
                          f"{out.strip()[:200]!r}") from None


def probe_device(device: SshDevice) -> dict[str, Any]:
    """The probe's answer from ``device`` (bounded by its connect timeout + 30 s); raises
    DeviceError with ssh's own message when it cannot be reached."""
    out = ssh.run_step(device, ssh.python_command(
        device, ssh.bootstrap_source(), ["probe", device.settings.workdir]),
        what="the probe")
    return _answer(out, device.label)


def probe_here() -> dict[str, Any]:
    """The same probe of this host's interpreter (a local profile's measurements run here)."""
    try:
        done = subprocess.run([sys.executable, "-c", ssh.bootstrap_source(), "probe", ""],
                              capture_output=True, text=True, timeout=LOCAL_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"the probe of {sys.executable} did not answer within "
                          f"{LOCAL_PROBE_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise DeviceError(f"the probe of {sys.executable} failed: "
                          f"{ssh.last_line(done.stderr) or done.returncode}")
    return _answer(done.stdout, "this host")
