"""Profiles that target an Android phone: adb://SERIAL and the [adb] table."""

from __future__ import annotations

import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from devtrack.core.adb_target import DEFAULT_BENCHMARK_MODEL
from devtrack.core.profile import Profile, validate_profile
from devtrack.errors import ProfileError

PHONE = """
name = "pixel8"
formats = ["tflite"]
[execution]
target = "adb://R58M123ABC"
threads = 4
cpu_affinity = [4, 5, 6, 7]
timeout_s = 60
[measurement]
max_time_s = 10
"""


def _profile(text: str) -> Profile:
    return validate_profile(tomllib.loads(text), "pixel8.toml")


def test_an_adb_target_with_defaults_for_the_adb_table() -> None:
    p = _profile(PHONE)
    assert p.execution.target == "adb://R58M123ABC"
    assert p.adb.benchmark_model == DEFAULT_BENCHMARK_MODEL and p.adb.adb == "adb"


def test_the_adb_table_is_not_part_of_the_hash_or_snapshot_the_target_is() -> None:
    plain = _profile(PHONE)
    custom = _profile(PHONE + '[adb]\nbenchmark_model = "/data/local/tmp/bm"\n'
                              'adb = "/opt/platform-tools/adb"\n')
    assert custom.adb.benchmark_model == "/data/local/tmp/bm"
    assert custom.adb.adb == "/opt/platform-tools/adb"
    assert "adb" not in custom.to_dict()
    assert custom.hash == plain.hash and custom.conditions_hash == plain.conditions_hash
    other = _profile(PHONE.replace("R58M123ABC", "emulator-5554"))
    assert other.conditions_hash != plain.conditions_hash
    again = validate_profile(custom.to_dict(), "snapshot")
    assert again.execution.target == custom.execution.target


def test_a_network_serial_is_accepted() -> None:
    assert _profile(PHONE.replace("R58M123ABC", "192.168.1.20:5555")).execution.target.endswith(
        ":5555")


@pytest.mark.parametrize(("change", "needles"), [
    (("adb://R58M123ABC", "adb://"), ["execution.target", "names no device"]),
    (("adb://R58M123ABC", "adb://bad serial"), ["execution.target", "not a device serial"]),
    (("adb://R58M123ABC", "adb://-x"), ["execution.target", "not a device serial"]),
    (('formats = ["tflite"]', 'formats = ["onnx", "tflite"]'), ["formats", "tflite models only"]),
    (("timeout_s = 60", "timeout_s = 60\nmemory_limit_mb = 512"),
     ["execution.memory_limit_mb", "cannot be enforced"]),
])
def test_bad_adb_profiles_name_the_key(change: tuple[str, str], needles: list[str]) -> None:
    with pytest.raises(ProfileError) as info:
        _profile(PHONE.replace(*change))
    message = str(info.value)
    assert message.startswith("pixel8.toml: ") and "\n" not in message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(("table", "needles"), [
    ('[adb]\nbenchmark_model = "benchmark_model"\n', ["adb.benchmark_model", "absolute path"]),
    ('[adb]\nbenchmark_model = "/data/local/tmp/bm; rm -rf /"\n', ["adb.benchmark_model"]),
    ('[adb]\nadb = "--help"\n', ["adb.adb", "not a program"]),
    ('[adb]\nbenchmark_model = 3\n', ["adb.benchmark_model", "expected a string"]),
    ('[adb]\nbenchmark = "/x"\n', ["adb.benchmark", "did you mean 'benchmark_model'"]),
    ('[litert]\napi = "compiled_model"\n', ["litert.api", "Interpreter API"]),
    ("[adb]\nlock_timeout_s = -1\n", ["adb.lock_timeout_s"]),
    ("[adb]\nlock_timeout_s = 100000\n", ["adb.lock_timeout_s"]),
    ('[adb]\nlock_timeout_s = "10"\n', ["adb.lock_timeout_s", "expected a number"]),
])
def test_bad_adb_tables(table: str, needles: list[str]) -> None:
    with pytest.raises(ProfileError) as info:
        _profile(PHONE + table)
    for needle in needles:
        assert needle in str(info.value)


def test_the_lock_timeout_defaults_as_ssh_s_and_is_read() -> None:
    from devtrack.core.targets import SshSettings

    assert _profile(PHONE).adb.lock_timeout_s == SshSettings().lock_timeout_s == 600
    assert _profile(PHONE + "[adb]\nlock_timeout_s = 0\n").adb.lock_timeout_s == 0


def test_an_adb_table_without_an_adb_target_is_refused() -> None:
    with pytest.raises(ProfileError, match=r"adb: is only used with execution.target"):
        _profile('name = "x"\n[adb]\nadb = "adb"\n')
