"""Commands on an SSH device through the system's OpenSSH client, every step bounded in time.

The user's own ``ssh`` runs them, so ``~/.ssh/config``, agents, ProxyJump and ControlMaster
work as they do at the shell; ``BatchMode=yes`` means it never prompts (a missing key fails
at once, with ssh's message). Each step has a local deadline: a device that stops answering
costs at most that long. ssh runs in its own session, so Ctrl-C reaches devtrack, which then
stops it (closing the remote command's stdin, which the device side watches).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtrack.core.targets import SshSettings, SshTarget, parse_ssh_target
from devtrack.errors import DeviceError, DeviceUnreachable

SERVER_ALIVE_INTERVAL_S = 5  # ssh itself gives up on a silent link after 3 × this
SERVER_ALIVE_COUNT = 3
STEP_SLACK_S = 30.0  # beyond the connect timeout: start Python on a slow board, answer


@dataclass(frozen=True)
class SshDevice:
    """One device as a profile names it: where it is and how to reach it."""

    name: str  # the profile's name, for messages
    target: SshTarget
    settings: SshSettings

    @classmethod
    def of(cls, name: str, target: str, settings: SshSettings) -> SshDevice:
        return cls(name, parse_ssh_target(target), settings)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.target})"


def ssh_program() -> str:
    found = shutil.which("ssh")
    if found is None:
        raise DeviceError("no ssh client found on PATH; install OpenSSH's client "
                          "(Debian: apt-get install openssh-client)")
    return found


def remote_word(word: str) -> str:
    """``word`` quoted for the device's shell; a leading ``~/`` still means its home."""
    if word.startswith("~/"):
        return '"$HOME"/' + shlex.quote(word[2:])
    return shlex.quote(word)


def ssh_argv(device: SshDevice, remote: Sequence[str]) -> list[str]:
    """The ssh command line that runs ``remote`` (words, quoted here) on ``device``."""
    s = device.settings
    argv = [ssh_program(), "-T", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={max(1, math.ceil(s.connect_timeout_s))}",
            "-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL_S}",
            "-o", f"ServerAliveCountMax={SERVER_ALIVE_COUNT}", *s.options]
    if device.target.port is not None:
        argv += ["-p", str(device.target.port)]
    return [*argv, "--", device.target.destination, " ".join(remote_word(w) for w in remote)]


def python_command(device: SshDevice, source: str, args: Sequence[str]) -> list[str]:
    """The words that run ``source`` with ``args`` on the device's interpreter."""
    return [device.settings.python, "-c", source, *args]


def bootstrap_source() -> str:
    return (Path(__file__).with_name("device_bootstrap.py")).read_text(encoding="utf-8")


def last_line(text: str) -> str:
    """ssh's own message: the last line that says something."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def start(argv: list[str], *, stdin: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """ssh in its own session (Ctrl-C is devtrack's to handle), pipes for all three streams."""
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ssh (and anything it started here) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def step_timeout(device: SshDevice, extra_s: float = 0.0) -> float:
    return device.settings.connect_timeout_s + STEP_SLACK_S + extra_s


def run_step(device: SshDevice, remote: Sequence[str], *, what: str,
             data: bytes = b"", timeout_s: float | None = None) -> str:
    """Run ``remote`` on the device with ``data`` on its stdin; its stdout as text.

    Raises DeviceError naming the device and ssh's own message when ssh cannot connect or
    the command fails, and when it does not finish within ``timeout_s`` (default: the
    connect timeout + 30 s). Ctrl-C stops ssh and propagates.
    """
    limit = step_timeout(device) if timeout_s is None else timeout_s
    proc = start(ssh_argv(device, remote))
    try:
        out, err = proc.communicate(data, timeout=limit)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise DeviceUnreachable(f"{device.label}: no answer to {what} within {limit:g} s; "
                                "the device or the link is hung") from None
    except BaseException:
        stop(proc)
        raise
    if proc.returncode != 0:
        message = last_line(err.decode("utf-8", errors="replace"))
        if proc.returncode == 255:
            raise DeviceUnreachable(f"cannot reach {device.label}: "
                                    f"{message or 'ssh failed (exit 255)'}")
        if proc.returncode == 127:  # the shell found no such program
            raise DeviceError(f"{device.settings.python} is not found on {device.label} "
                              f"(set ssh.python): {message or 'exit 127'}")
        raise DeviceError(f"{device.label}: {what} failed on the device (exit "
                          f"{proc.returncode}): {message or 'no message'}")
    return out.decode("utf-8", errors="replace")
