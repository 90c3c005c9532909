"""A stand-in for the `adb` client: records every command and plays a phone back.

Tests install it on PATH as `adb` (``install``); ``FAKE_ADB_DIR`` holds its state: ``calls.jsonl``
(one JSON list of arguments per call), ``device/`` (the phone's files, pushed there for real)
and ``config.json``: ``state`` (get-state's answer; "missing" makes adb fail as for an
unplugged device), ``binary`` (benchmark_model present), ``taskset`` (present), ``outputs``
(sha256 of a model -> a recorded benchmark_model log to replay), ``output`` (the default log),
``exit_code`` and ``sleep_s`` of the benchmark run (``benchmarks.jsonl``: when each ran).
The phone lock's shell scripts (anything naming ``/data/local/tmp/devtrack/lock``) run in a
real ``/bin/sh`` on ``device/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

PID = "4242"


def install(bin_dir: Path, state_dir: Path) -> Path:
    """Write an executable ``adb`` into ``bin_dir`` that runs this file with this Python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "device").mkdir(exist_ok=True)
    script = bin_dir / "adb"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
                      f"{shlex.quote(str(Path(__file__).resolve()))} \"$@\"\n", encoding="utf-8")
    script.chmod(0o755)
    return script


class Phone:
    """The stand-in adb's state: what it was asked, what it answers."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def configure(self, **config: Any) -> None:
        path = self.state / "config.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **config}))

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def pushes(self) -> list[list[str]]:
        return [c for c in self.calls() if c[2:3] == ["push"]]

    def benchmark_commands(self) -> list[str]:
        return [c[-1] for c in self.calls() if c[2:3] == ["shell"] and "exec " in c[-1]]

    def reset_calls(self) -> None:
        (self.state / "calls.jsonl").unlink(missing_ok=True)


def start(tmp_path: Path, monkeypatch: Any, output: Path) -> Phone:
    """Install the stand-in adb first on PATH (through pytest's ``monkeypatch``), replaying
    ``output`` for every benchmark run until configured otherwise."""
    state = tmp_path / "fake-adb"
    install(tmp_path / "bin", state)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_DIR", str(state))
    phone = Phone(state)
    phone.configure(output=str(output))
    return phone


def _config(state: Path) -> dict:
    path = state / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _device_path(state: Path, remote: str) -> Path:
    return state / "device" / remote.lstrip("/")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _real_shell(state: Path, command: str) -> int:
    """Run ``command`` in a real POSIX shell with the phone's paths moved into ``device/``
    (the lock's scripts: mkdir's atomicity, cat, rm -r, date +%s, printf, as on the phone)."""
    import subprocess

    root = str(state / "device")  # a pytest tmp_path: no spaces or quotes to escape
    local = command.replace("/data/local/tmp", f"{root}/data/local/tmp")
    return subprocess.run(["/bin/sh", "-c", local], check=False).returncode


def _shell(state: Path, config: dict, command: str) -> int:
    if "/data/local/tmp/devtrack/lock" in command:
        return _real_shell(state, command)
    if "exec " in command:
        return _benchmark(state, config, shlex.split(command.split("exec ", 1)[1]))
    if "getprop" in command:
        print("Google\nPixel 8\n14\narm64-v8a\nTensor G3")
        return 0
    if command.startswith("[ -x "):
        print("present" if config.get("binary", True) else "missing")
        return 0
    if command.startswith("command -v taskset"):
        print("/system/bin/taskset" if config.get("taskset", True) else "missing")
        return 0
    words = shlex.split(command.replace("&&", " ").replace("||", " "))
    if words[:1] == ["[", ] or "sha256sum" in words:
        remote = words[words.index("sha256sum") + 1]
        local = _device_path(state, remote)
        if local.exists():
            print(f"{_sha(local)}  {remote}")
        elif not command.startswith("[ -f"):
            print(f"sha256sum: {remote}: No such file or directory", file=sys.stderr)
            return 1
        return 0
    if words[:2] == ["mkdir", "-p"]:
        _device_path(state, words[2]).mkdir(parents=True, exist_ok=True)
        return 0
    if words[:2] == ["mv", "-f"]:
        os.replace(_device_path(state, words[2]), _device_path(state, words[3]))
        return 0
    if words[:1] == ["kill"]:
        return 0
    print(f"/system/bin/sh: unknown command: {command}", file=sys.stderr)
    return 127


def _benchmark(state: Path, config: dict, args: list[str]) -> int:
    print(f"DEVTRACK_PID={PID}", flush=True)
    graph = next(a.split("=", 1)[1] for a in args if a.startswith("--graph="))
    model = _device_path(state, graph)
    if not model.exists():
        print(f"ERROR: Could not open '{graph}'.\nERROR: Benchmarking failed.")
        return 1
    begun = time.time()
    time.sleep(float(config.get("sleep_s", 0)))
    with open(state / "benchmarks.jsonl", "a", encoding="utf-8") as fh:  # when it ran
        fh.write(json.dumps([begun, time.time()]) + "\n")
    outputs = config.get("outputs", {})
    log = outputs.get(_sha(model)) or config.get("output")
    sys.stdout.write(Path(log).read_text(encoding="utf-8"))
    return int(config.get("exit_code", 0))


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_ADB_DIR"])
    with open(state / "calls.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(argv) + "\n")
    config = _config(state)
    if argv[:1] == ["-s"]:
        argv = argv[2:]
    if config.get("state") == "missing":
        print("error: device 'X' not found", file=sys.stderr)
        return 1
    if argv[0] == "get-state":
        print(config.get("state", "device"))
        return 0
    if argv[0] == "push":
        target = _device_path(state, argv[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(argv[1], target)
        print(f"{argv[1]}: 1 file pushed, 0 skipped.")
        return 0
    if argv[0] == "shell":
        return _shell(state, config, " ".join(argv[1:]))
    print(f"adb: unknown command {argv[0]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
