"""Where a profile's measurements run: this host, or a device over SSH (target and settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devtrack.core.adb_target import adb_target_problem, is_adb
from devtrack.core.device_lock import DEFAULT_LOCK_TIMEOUT_S

LOCAL = "local"
SSH_SCHEME = "ssh://"
DEFAULT_PYTHON = "python3"
DEFAULT_CONNECT_TIMEOUT_S = 10.0
# What a user name and a host may hold: no spaces, quotes or shell characters, and never a
# leading "-" (it would reach ssh's command line as an option).
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")


@dataclass(frozen=True)
class SshTarget:
    """``ssh://[user@]host[:port]`` taken apart; ``destination`` is what ssh is given."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{SSH_SCHEME}{user}{host}{port}"


@dataclass(frozen=True)
class SshSettings:
    """The ``[ssh]`` table of a profile: how to reach and use the device."""

    python: str = DEFAULT_PYTHON  # the device's interpreter
    options: tuple[str, ...] = ()  # extra OpenSSH client arguments, e.g. ("-i", "~/.ssh/lab")
    workdir: str = ""  # "" = $XDG_CACHE_HOME/devtrack, else ~/.cache/devtrack, on the device
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S  # wait this long for a busy device


def is_ssh(target: str) -> bool:
    return target.startswith(SSH_SCHEME)


def target_problem(target: str) -> str | None:
    """Why ``target`` is not ``local``, a valid ``ssh://[user@]host[:port]`` or a valid
    ``adb://SERIAL`` (core/adb_target.py), or None."""
    if target == LOCAL:
        return None
    if is_adb(target):
        return adb_target_problem(target)
    if not is_ssh(target):
        scheme = target.split("://", 1)[0] + "://" if "://" in target else target
        return (f"unsupported target {target!r}; use \"local\", "
                f"\"ssh://[user@]host[:port]\" or \"adb://SERIAL\" (not {scheme!r})")
    try:
        parse_ssh_target(target)
    except ValueError as exc:
        return str(exc)
    return None


def parse_ssh_target(target: str) -> SshTarget:
    """``ssh://[user@]host[:port]`` (``[v6]`` for an IPv6 address); ValueError says why not."""
    rest = target[len(SSH_SCHEME):] if is_ssh(target) else target
    if not rest:
        raise ValueError(f"{target!r} names no host; write ssh://[user@]host[:port]")
    if any(c in rest for c in "/?#"):
        raise ValueError(f"{target!r}: a target is ssh://[user@]host[:port], with no path")
    user: str | None = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not _USER.match(user):
            raise ValueError(f"{target!r}: {user!r} is not a valid user name")
    port: int | None = None
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not _IPV6.match(host):
            raise ValueError(f"{target!r}: {rest!r} is not a valid [IPv6] address")
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"{target!r}: unexpected {tail!r} after the address")
            port = _port(target, tail[1:])
    else:
        host, colon, port_text = rest.partition(":")
        if colon:
            port = _port(target, port_text)
        if not _HOST.match(host):
            raise ValueError(f"{target!r}: {host!r} is not a valid host name")
    return SshTarget(host=host, user=user, port=port)


def _port(target: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{target!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def device_label(profile_name: str, target: str) -> str:
    """How messages name a device: the profile, and where it points."""
    return profile_name if target == LOCAL else f"{profile_name} ({target})"


MIN_DEVICE_PYTHON = (3, 10)  # devtrack's own floor: the shipped code uses 3.10 features
RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "litert"}
RUNTIME_NAMES = {"onnxruntime": "onnxruntime",
                 "litert": "LiteRT (ai_edge_litert, tflite_runtime or tensorflow)"}


def readiness_problems(probe: dict[str, Any], formats: tuple[str, ...], device: str
                       ) -> list[str]:
    """What keeps a device from measuring ``formats``, from its probe (bench/device_bootstrap):
    one sentence each, e.g. "onnxruntime is not importable by /usr/bin/python3 on pi4"."""
    python = probe.get("python") or "its python"
    problems = []
    version = str(probe.get("python_version") or "0")
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < MIN_DEVICE_PYTHON:
        floor = ".".join(map(str, MIN_DEVICE_PYTHON))
        problems.append(f"Python {version} at {python} on {device} is too old: devtrack's "
                        f"measurement code needs Python >= {floor}")
    needed = ["numpy", *(RUNTIME_OF_FORMAT[f] for f in formats if f in RUNTIME_OF_FORMAT)]
    for module in needed:
        found = probe.get(module) or {}
        if not found.get("ok"):
            why = f" ({found['error']})" if found.get("error") else ""
            problems.append(f"{RUNTIME_NAMES.get(module, module)} is not importable by "
                            f"{python} on {device}{why}")
    if probe.get("workdir_writable") is False:
        problems.append(f"the workdir {probe.get('workdir')} on {device} is not writable "
                        "(set ssh.workdir)")
    return problems
