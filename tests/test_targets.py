"""Targets and device readiness as plain data (core/targets.py)."""

from __future__ import annotations

import pytest

from devtrack.core.targets import (
    SshTarget,
    parse_ssh_target,
    readiness_problems,
    target_problem,
)


@pytest.mark.parametrize("text, expected", [
    ("ssh://pi4", SshTarget("pi4")),
    ("ssh://pi@pi4.lab", SshTarget("pi4.lab", "pi")),
    ("ssh://pi@10.0.0.7:2222", SshTarget("10.0.0.7", "pi", 2222)),
    ("ssh://[::1]:22", SshTarget("::1", None, 22)),
    ("ssh://lab_board-3", SshTarget("lab_board-3")),
])
def test_ssh_targets_parse_and_print_back(text: str, expected: SshTarget) -> None:
    assert parse_ssh_target(text) == expected
    assert str(expected) == text
    assert target_problem(text) is None


@pytest.mark.parametrize("text, problem", [
    ("ssh://-oProxyCommand=touch_x", "is not a valid host name"),
    ("ssh://pi@", "is not a valid host name"),
    ("ssh://pi4:99999", "is not a number from 1 to 65535"),
    ("ssh://[::1", "is not a valid [IPv6] address"),
    ("ssh://pi4;reboot", "is not a valid host name"),
    ("ssh://p i@pi4", "is not a valid user name"),
    ("adb://", "adb://"),
    ("adb://-s", "adb://"),
    ("localhost", "unsupported target 'localhost'"),
])
def test_bad_targets_say_why(text: str, problem: str) -> None:
    found = target_problem(text)
    assert found is not None and problem in found


READY = {"python": "/usr/bin/python3", "python_version": "3.11.2",
         "numpy": {"ok": True, "version": "1.26.4"},
         "onnxruntime": {"ok": True, "version": "1.17.1"},
         "litert": {"ok": False, "error": "ModuleNotFoundError: No module named 'ai_edge_litert'"},
         "workdir": "/home/pi/.cache/devtrack", "workdir_writable": True}


def test_a_device_is_ready_for_the_formats_its_runtimes_cover() -> None:
    assert readiness_problems(READY, ("onnx",), "pi4") == []
    problems = readiness_problems(READY, ("onnx", "tflite"), "pi4")
    assert problems == ["LiteRT (ai_edge_litert, tflite_runtime or tensorflow) is not "
                        "importable by /usr/bin/python3 on pi4 (ModuleNotFoundError: No "
                        "module named 'ai_edge_litert')"]


def test_an_old_python_and_a_read_only_workdir_are_named() -> None:
    probe = {**READY, "python_version": "3.9.2", "workdir_writable": False}
    problems = readiness_problems(probe, ("onnx",), "pi4")
    assert problems[0] == ("Python 3.9.2 at /usr/bin/python3 on pi4 is too old: devtrack's "
                           "measurement code needs Python >= 3.10")
    assert "the workdir /home/pi/.cache/devtrack on pi4 is not writable" in problems[1]


def test_missing_numpy_is_named_first() -> None:
    probe = {**READY, "numpy": {"ok": False, "error": "ModuleNotFoundError: numpy"}}
    assert readiness_problems(probe, ("onnx",), "jetson")[0].startswith(
        "numpy is not importable by /usr/bin/python3 on jetson")


def test_one_ssh_board_is_one_device_whoever_logs_in() -> None:
    """Profiles that reach one board as different users or with the default port written out
    measure one after another, not at once."""
    from dataclasses import replace

    from devtrack.core.profile import ExecutionSettings, Profile
    from devtrack.targets import device_of

    def on(target: str) -> Profile:
        return replace(Profile(name="p"), execution=ExecutionSettings(target=target))

    assert device_of(on("ssh://pi@board")) == device_of(on("ssh://ci@board:22")) == \
        "ssh://board:22"
    assert device_of(on("ssh://board:2222")) != device_of(on("ssh://board"))
    assert device_of(on("ssh://[fe80::1]:22")) == "ssh://[fe80::1]:22"
    assert device_of(on("local")) == "local"
