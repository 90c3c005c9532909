"""Device profiles: shipped files, validation messages, hashing, workspace overrides, copying."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from devtrack.core.profile import (
    Budgets,
    ExecutionSettings,
    LiteRTSettings,
    MeasurementSettings,
    OrtSettings,
    Profile,
    validate_profile,
)
from devtrack.errors import NotFoundError, ProfileError
from devtrack.profiles import (
    copy_shipped_profiles,
    list_profiles,
    load_profile,
    load_profile_file,
    shipped_profiles_dir,
)

SHIPPED = sorted(shipped_profiles_dir().glob("*.toml"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def profile_error(tmp_path: Path, body: str, name: str = "p") -> tuple[Path, str]:
    """Write ``name = "p"`` plus ``body`` to p.toml; return the path and the error message."""
    path = write(tmp_path / f"{name}.toml", f'name = "{name}"\n{body}')
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return path, message


# --- shipped profiles ---------------------------------------------------------------------


def test_at_least_the_four_documented_profiles_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"big-core-1t", "phone-4t", "iot-256mb", "ci-host"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_validates_and_round_trips(path: Path) -> None:
    profile = load_profile_file(path)
    assert profile.name == path.stem
    assert profile.description
    assert "#" in path.read_text(), "shipped profiles explain themselves with comments"
    again = validate_profile(profile.to_dict(), "snapshot")
    assert again == profile
    assert again.hash == profile.hash


@pytest.mark.parametrize(
    ("name", "threads", "affinity", "memory", "formats"),
    [
        ("big-core-1t", 1, (0,), None, ("onnx", "tflite")),
        ("phone-4t", 4, (0, 1, 2, 3), 1024, ("onnx", "tflite")),
        ("iot-256mb", 1, (0,), 256, ("tflite",)),
        ("ci-host", 2, (), None, ("onnx", "tflite")),
    ],
)
def test_shipped_profiles_describe_their_devices(
    name: str, threads: int, affinity: tuple[int, ...], memory: int | None,
    formats: tuple[str, ...],
) -> None:
    profile = load_profile(name, None)
    assert profile.execution.threads == threads
    assert profile.execution.cpu_affinity == affinity
    assert profile.execution.memory_limit_mb == memory
    assert profile.formats == formats
    assert profile.origin == "shipped"
    assert profile.source == str(shipped_profiles_dir() / f"{name}.toml")


def test_ci_host_measures_briefly() -> None:
    ci, big = load_profile("ci-host", None), load_profile("big-core-1t", None)
    assert ci.measurement.max_time_s < big.measurement.max_time_s
    assert ci.measurement.min_runs < big.measurement.min_runs


@pytest.mark.parametrize(
    ("fmt", "expected"), [("tflite", True), (".tflite", True), ("onnx", False), ("ONNX", False)]
)
def test_runs_format(fmt: str, expected: bool) -> None:
    assert load_profile("iot-256mb", None).runs_format(fmt) is expected


# --- defaults -----------------------------------------------------------------------------


def test_only_name_is_required_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    profile = load_profile_file(write(tmp_path / "bare.toml", 'name = "bare"\n'))
    assert profile == Profile(name="bare")
    assert profile.execution == ExecutionSettings()
    assert profile.onnxruntime == OrtSettings(graph_optimization_level="all",
                                              execution_mode="sequential")
    assert profile.litert == LiteRTSettings(xnnpack=True, api="interpreter")
    assert profile.measurement == MeasurementSettings(10, 50, 2.0, 20.0, 0.01, 0.0)
    assert profile.budgets.items() == {}
    assert profile.to_dict()["execution"] == {
        "target": "local", "threads": 1, "cpu_affinity": [], "memory_limit_mb": None,
        "timeout_s": 120.0,
    }


def test_budgets_items_lists_only_set_budgets() -> None:
    assert Budgets(latency_p90_ms=5.0, max_accuracy_drop=0.0).items() == {
        "latency_p90_ms": 5.0, "max_accuracy_drop": 0.0}


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ((), [0, 1], ()),
        ((0,), [0, 1], (0,)),
        ((0, 1, 2, 3), [0, 1], (0, 1)),  # phone-4t on the 2-core host
        ((0,), [2, 3], (2,)),  # none of the requested cores exist: lowest available ones
        ((4, 5, 6), [1, 0], (0, 1)),
    ],
)
def test_effective_affinity_clamps_to_available_cores(
    requested: tuple[int, ...], available: list[int], expected: tuple[int, ...]
) -> None:
    assert ExecutionSettings(cpu_affinity=requested).effective_affinity(available) == expected


# --- validation messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "suggestion"),
    [
        ("[execution]\nthread = 2\n", "execution.thread", "threads"),
        ("[execution]\naffinity = [0]\n", "execution.affinity", "cpu_affinity"),
        ("[measurement]\nmin_run = 5\n", "measurement.min_run", "min_runs"),
        ("[onnxruntime]\noptimization_level = 'all'\n", "onnxruntime.optimization_level",
         "graph_optimization_level"),
        ("[litert]\nxnnpak = true\n", "litert.xnnpak", "xnnpack"),
        ("[budgets]\nlatency_p90 = 3.0\n", "budgets.latency_p90", "latency_p90_ms"),
        ("[budget]\nlatency_p90_ms = 3.0\n", "budget", "budgets"),
        ("format = ['onnx']\n", "format", "formats"),
    ],
)
def test_unknown_key_names_key_and_suggests_the_close_match(
    tmp_path: Path, body: str, key: str, suggestion: str
) -> None:
    _, message = profile_error(tmp_path, body)
    assert f": {key}: unknown key" in message
    assert f"did you mean '{suggestion}'?" in message


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path: Path) -> None:
    _, message = profile_error(tmp_path, "[execution]\nzzz = 1\n")
    assert "execution.zzz: unknown key" in message
    assert "valid keys: target, threads, cpu_affinity, memory_limit_mb, timeout_s" in message


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        # wrong types; bool is not an int and an int is not a bool
        ("[execution]\nthreads = true\n", "execution.threads", "expected an integer, got boolean"),
        ("[execution]\nthreads = 2.0\n", "execution.threads", "expected an integer, got float"),
        ("[execution]\nthreads = '4'\n", "execution.threads", "expected an integer, got string"),
        ("[execution]\ntimeout_s = true\n", "execution.timeout_s",
         "expected a number, got boolean"),
        ("[execution]\nmemory_limit_mb = 256.5\n", "execution.memory_limit_mb",
         "expected an integer, got float"),
        ("[execution]\ncpu_affinity = 0\n", "execution.cpu_affinity", "expected an array"),
        ("[execution]\ncpu_affinity = [0, true]\n", "execution.cpu_affinity[1]",
         "expected a core id"),
        ("[litert]\nxnnpack = 1\n", "litert.xnnpack", "expected true or false, got integer"),
        ("[measurement]\nmin_time_s = '2'\n", "measurement.min_time_s",
         "expected a number, got string"),
        ("[measurement]\nwarmup_runs = false\n", "measurement.warmup_runs",
         "expected an integer, got boolean"),
        ("[budgets]\nlatency_p90_ms = 'fast'\n", "budgets.latency_p90_ms",
         "expected a number, got string"),
        ("[budgets]\nmin_accuracy = true\n", "budgets.min_accuracy",
         "expected a number, got boolean"),
        ("[budgets]\npeak_memory_mb = inf\n", "budgets.peak_memory_mb", "expected a number"),
        ("description = 5\n", "description", "expected a string, got integer"),
        ("formats = 'onnx'\n", "formats", "expected an array, got string"),
        ("formats = [1]\n", "formats[0]", "expected a string, got integer"),
        ("execution = 3\n", "execution", "expected a table ([execution]), got integer"),
        # ranges
        ("[execution]\nthreads = 0\n", "execution.threads", "must be >= 1, got 0"),
        ("[execution]\ncpu_affinity = [-1]\n", "execution.cpu_affinity[0]", "expected a core id"),
        ("[execution]\ncpu_affinity = [1, 1]\n", "execution.cpu_affinity[1]", "listed twice"),
        ("[execution]\nmemory_limit_mb = 0\n", "execution.memory_limit_mb", "must be >= 1"),
        ("[execution]\ntimeout_s = 0\n", "execution.timeout_s", "must be > 0"),
        ("[measurement]\nmin_runs = 0\n", "measurement.min_runs", "must be >= 1, got 0"),
        ("[measurement]\nmin_runs = -3\n", "measurement.min_runs", "must be >= 1, got -3"),
        ("[measurement]\nwarmup_runs = -1\n", "measurement.warmup_runs", "must be >= 0"),
        ("[measurement]\ncooldown_s = -0.5\n", "measurement.cooldown_s", "must be >= 0"),
        ("[measurement]\ntarget_rel_ci = 0\n", "measurement.target_rel_ci", "must be > 0"),
        ("[measurement]\ntarget_rel_ci = 1\n", "measurement.target_rel_ci", "write 0.01 for 1%"),
        ("[measurement]\nmin_time_s = 30.0\nmax_time_s = 20.0\n", "measurement.min_time_s",
         "30.0 is greater than measurement.max_time_s (20.0)"),
        ("[execution]\ntimeout_s = 10\n[measurement]\nmax_time_s = 10\n",
         "execution.timeout_s", "10 s is too short: a worker needs up to 21 s"),
        # bounds (issue 10, item 11): every numeric setting, integers that fit
        ("[execution]\nthreads = 100000\n", "execution.threads",
         "must be <= 256, got 100000 (allowed: 1 .. 256)"),
        ("[execution]\nthreads = 257\n", "execution.threads", "must be <= 256"),
        ("[execution]\nthreads = 99999999999999999999999\n", "execution.threads",
         "must be <= 256, got 99999999999999999999999"),
        ("[execution]\nthreads = -9999999999999999999999999999\n", "execution.threads",
         "must be >= 1"),
        ("[execution]\ncpu_affinity = [0, 4096]\n", "execution.cpu_affinity[1]",
         "expected a core id (integer 0 .. 4095), got (4096)"),
        ("[execution]\ncpu_affinity = [99999999999999999999999]\n",
         "execution.cpu_affinity[0]", "expected a core id (integer 0 .. 4095)"),
        ("[execution]\ncpu_affinity = [1.0]\n", "execution.cpu_affinity[0]",
         "expected a core id"),
        ("[execution]\nmemory_limit_mb = 2000000\n", "execution.memory_limit_mb",
         "must be <= 1048576"),
        ("[execution]\nmemory_limit_mb = 99999999999999999999999\n",
         "execution.memory_limit_mb", "must be <= 1048576"),
        ("[execution]\ntimeout_s = 86401\n", "execution.timeout_s", "must be <= 86400"),
        ("[execution]\ntimeout_s = 1e300\n", "execution.timeout_s", "must be <= 86400"),
        ("[execution]\ntimeout_s = 10" + "0" * 400 + "\n", "execution.timeout_s",
         "must be <= 86400, got 100000000000000000000..."),
        ("[execution]\ntimeout_s = nan\n", "execution.timeout_s", "expected a number"),
        ("[execution]\ntimeout_s = 5\n[measurement]\nmin_time_s = 0.1\nmax_time_s = 0.5\n",
         "execution.timeout_s", "set timeout_s to at least 6.8 or measurement.max_time_s "
                                "to at most 0"),
        ("[execution]\ntimeout_s = 30\n[measurement]\nmax_time_s = 10\ncooldown_s = 10\n",
         "execution.timeout_s", "a worker needs up to 31 s: 5 s to start, import the runtime, "
                                "load and warm up + 10 s cooldown + 16 s for a 10 s timed loop"),
        ("[measurement]\nwarmup_runs = 100001\n", "measurement.warmup_runs",
         "must be <= 100000"),
        ("[measurement]\nmin_runs = 1000001\n", "measurement.min_runs", "must be <= 1000000"),
        ("[measurement]\nmin_runs = 50.0\n", "measurement.min_runs",
         "expected an integer, got float"),
        ("[measurement]\nmax_time_s = 3601\n", "measurement.max_time_s", "must be <= 3600"),
        ("[measurement]\nmax_time_s = 0\n", "measurement.max_time_s", "must be > 0"),
        ("[measurement]\nmin_time_s = -inf\n", "measurement.min_time_s", "expected a number"),
        ("[measurement]\ncooldown_s = 601\n", "measurement.cooldown_s", "must be <= 600"),
        ("[budgets]\nmin_accuracy = 90\n", "budgets.min_accuracy",
         "must be <= 1, got 90 (allowed: 0 .. 1)"),
        ("[budgets]\nmax_accuracy_drop = 2\n", "budgets.max_accuracy_drop", "must be <= 1"),
        ("[budgets]\nlatency_p90_ms = 1e9\n", "budgets.latency_p90_ms", "must be <= 3600000"),
        ("[budgets]\npeak_memory_mb = 99999999999999999999999\n", "budgets.peak_memory_mb",
         "must be <= 1048576"),
        ("[budgets]\nmax_latency_regression_pct = 5000\n",
         "budgets.max_latency_regression_pct", "must be <= 1000"),
        # enums and targets
        ("[onnxruntime]\ngraph_optimization_level = 'max'\n",
         "onnxruntime.graph_optimization_level",
         "unknown value 'max'; allowed: disable, basic, extended, all"),
        ("[onnxruntime]\nexecution_mode = 'paralel'\n", "onnxruntime.execution_mode",
         "allowed: sequential, parallel; did you mean 'parallel'?"),
        ("[litert]\napi = 'compiled'\n", "litert.api",
         "allowed: interpreter, compiled_model; did you mean 'compiled_model'?"),
        ("formats = ['onnx', 'tflit']\n", "formats[1]",
         "allowed: onnx, tflite; did you mean 'tflite'?"),
        ("formats = []\n", "formats", "is empty"),
        ("formats = ['onnx', 'onnx']\n", "formats[1]", "'onnx' is listed twice"),
        ("[execution]\ntarget = 'ssh'\n", "execution.target",
         "unsupported target 'ssh'; use \"local\", \"ssh://[user@]host[:port]\" or "
         "\"adb://SERIAL\""),
        ("[execution]\ntarget = 'adb://'\n", "execution.target", "adb://"),
        ("[execution]\ntarget = 'ssh://'\n", "execution.target", "names no host"),
        ("[execution]\ntarget = 'ssh://pi@-oProxyCommand=x'\n", "execution.target",
         "'-oProxyCommand=x' is not a valid host name"),
        ("[execution]\ntarget = 'ssh://pi4:0'\n", "execution.target",
         "port '0' is not a number from 1 to 65535"),
        ("[execution]\ntarget = 'ssh://pi4:22/tmp'\n", "execution.target", "with no path"),
        ("[execution]\ntarget = 'ssh://a b@pi4'\n", "execution.target",
         "'a b' is not a valid user name"),
        ("[ssh]\npython = 'python3'\n", "ssh",
         "is only used with execution.target = \"ssh://[user@]host\""),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\npython = ''\n", "ssh.python",
         "is not an interpreter"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\npython = 'python3 -I'\n", "ssh.python",
         "is not an interpreter"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\noptions = '-i key'\n", "ssh.options",
         "expected an array"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\noptions = ['-i', 3]\n", "ssh.options[1]",
         "expected a non-empty string"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\nlock_timeout_s = -1\n",
         "ssh.lock_timeout_s", "must be >= 0"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\nconnect_timeout_s = 0\n",
         "ssh.connect_timeout_s", "must be > 0"),
        ("[execution]\ntarget = 'ssh://pi4'\n[ssh]\nport = 22\n", "ssh.port",
         "unknown key"),
    ],
)
def test_invalid_value_names_file_key_and_problem(
    tmp_path: Path, body: str, key: str, problem: str
) -> None:
    path, message = profile_error(tmp_path, body)
    assert message.startswith(f"{path}: {key}: ")
    assert problem in message


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(Budgets)])
def test_negative_budget_is_rejected(tmp_path: Path, key: str) -> None:
    path, message = profile_error(tmp_path, f"[budgets]\n{key} = -1.0\n")
    assert message.startswith(f"{path}: budgets.{key}: must be >= 0, got -1 (allowed: 0 .. ")


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(Budgets)])
def test_zero_budget_is_allowed(tmp_path: Path, key: str) -> None:
    profile = load_profile_file(write(tmp_path / "p.toml", f'name = "p"\n[budgets]\n{key} = 0\n'))
    assert profile.budgets.items() == {key: 0.0}


def test_missing_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", "[execution]\nthreads = 2\n")
    with pytest.raises(ProfileError, match=r"p\.toml: name: missing"):
        load_profile_file(path)


def test_invalid_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", 'name = "my phone"\n')
    with pytest.raises(ProfileError, match="'my phone' is not a valid profile name"):
        load_profile_file(path)


def test_name_must_equal_the_file_stem(tmp_path: Path) -> None:
    path = write(tmp_path / "phone.toml", 'name = "phone-4t"\n')
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: name: 'phone-4t' does not match the file name")
    assert "the file name stem must equal the name inside" in message
    assert "rename the file to phone-4t.toml" in message


def test_validate_profile_rejects_a_non_table() -> None:
    with pytest.raises(ProfileError, match=r"^snap: expected a table of settings, got array"):
        validate_profile([1, 2], "snap")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('name = "p"\n[execution]\nthreads = = 2\n', "line 3, column 11: invalid TOML"),
        ('name = "p"\n[execution\n', "line 2, column 11: invalid TOML"),
        ('name = "p"\ndescription = "unterminated\n', "line 2, column 28: invalid TOML"),
        ('name = "p"\nformats = [\n', "line 2 (end of file): invalid TOML"),
    ],
)
def test_toml_syntax_error_names_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path / "p.toml", text)
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert str(info.value).startswith(f"{path}: {where}: ")


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such profile file"):
        load_profile_file(tmp_path / "nope.toml")


# --- hash ---------------------------------------------------------------------------------

BASE = """\
name = "p"
formats = ["onnx", "tflite"]
[execution]
threads = 2
cpu_affinity = [0, 1]
timeout_s = 60
[measurement]
min_time_s = 1
max_time_s = 5.0
[budgets]
latency_p90_ms = 20
"""

SAME_SETTINGS = """\
# the same settings, written differently
[budgets]
latency_p90_ms = 20.0   # float instead of int
[measurement]
max_time_s = 5
min_time_s = 1.0
warmup_runs = 10        # the default, spelled out
[execution]
timeout_s = 60.0
cpu_affinity = [1, 0]   # order of cores does not matter
threads = 2
target = "local"
[onnxruntime]
graph_optimization_level = "all"
# trailing comment
"""


def test_hash_ignores_comments_key_order_and_spelled_out_defaults(tmp_path: Path) -> None:
    a = load_profile_file(write(tmp_path / "a" / "p.toml", BASE))
    b = load_profile_file(write(tmp_path / "b" / "p.toml",
                                'formats = ["tflite", "onnx"]\nname = "p"\n' + SAME_SETTINGS))
    assert a == b
    assert a.hash == b.hash
    assert len(a.hash) == 64 and int(a.hash, 16) >= 0


def test_hash_ignores_description_and_source() -> None:
    a = Profile(name="p", description="one", source="a.toml")
    b = Profile(name="p", description="two", source="b.toml", origin="workspace")
    assert a.hash == b.hash


ALTERNATES: dict[str, Any] = {
    "name": "q", "formats": ["onnx"],
    "execution.target": "ssh://pi@pi4:2222",
    "execution.threads": 3, "execution.cpu_affinity": [0],
    "execution.memory_limit_mb": 512, "execution.timeout_s": 61,
    "onnxruntime.graph_optimization_level": "basic", "onnxruntime.execution_mode": "parallel",
    "litert.xnnpack": False, "litert.api": "compiled_model",
    "measurement.warmup_runs": 11, "measurement.min_runs": 51, "measurement.min_time_s": 1.5,
    "measurement.max_time_s": 6.0, "measurement.target_rel_ci": 0.02,
    "measurement.cooldown_s": 0.5,
    **{f"budgets.{f.name}": 7.5 for f in dataclasses.fields(Budgets)},
    "budgets.min_accuracy": 0.75,  # fractions: at most 1
    "budgets.max_accuracy_drop": 0.75,
}


def _setting_paths() -> list[str]:
    base = Profile(name="p").to_dict()
    return [f"{k}.{sub}" if isinstance(v, dict) else k
            for k, v in base.items() if k != "description"
            for sub in (v if isinstance(v, dict) else [None])]


def test_every_setting_has_an_alternate_value_below() -> None:
    assert set(_setting_paths()) == set(ALTERNATES)


@pytest.mark.parametrize("setting", [s for s in _setting_paths() if ALTERNATES.get(s) is not None])
def test_hash_changes_when_any_setting_changes(tmp_path: Path, setting: str) -> None:
    base = load_profile_file(write(tmp_path / "p.toml", BASE))
    data = base.to_dict()
    section, _, key = setting.partition(".")
    if key:
        data[section][key] = ALTERNATES[setting]
    else:
        data[section] = ALTERNATES[setting]
    changed = validate_profile(data, "changed")
    assert changed != base
    assert changed.hash != base.hash


def test_ssh_target_and_table_are_read(tmp_path: Path) -> None:
    from devtrack.core.targets import SshTarget, parse_ssh_target

    profile = load_profile_file(write(tmp_path / "pi4.toml", """name = "pi4"
[execution]
target = "ssh://pi@[fe80::1]:2222"
[ssh]
python = "/usr/bin/python3"
options = ["-i", "~/.ssh/lab", "-o", "ProxyJump=bastion"]
workdir = "/var/tmp/devtrack"
lock_timeout_s = 0
"""))
    assert parse_ssh_target(profile.execution.target) == SshTarget("fe80::1", "pi", 2222)
    assert str(parse_ssh_target(profile.execution.target)) == profile.execution.target
    assert profile.ssh.options == ("-i", "~/.ssh/lab", "-o", "ProxyJump=bastion")
    assert profile.ssh.python == "/usr/bin/python3"
    assert profile.ssh.lock_timeout_s == 0.0
    assert profile.ssh.connect_timeout_s == 10.0
    # how to reach the device is not a setting of a run: options may name key files
    assert "ssh" not in profile.to_dict()
    same = load_profile_file(write(tmp_path / "b" / "pi4.toml", """name = "pi4"
[execution]
target = "ssh://pi@[fe80::1]:2222"
"""))
    assert same.hash == profile.hash


# --- workspace and shipped ----------------------------------------------------------------


def test_shipped_dir_is_the_repo_device_profiles_in_a_checkout() -> None:
    assert shipped_profiles_dir() == Path(__file__).resolve().parents[1] / "device_profiles"


def test_list_without_workspace_lists_shipped_profiles() -> None:
    entries = list_profiles(None)
    assert [e.name for e in entries] == [p.stem for p in SHIPPED]
    assert all(e.ok and e.source == "shipped" and e.shadows is None for e in entries)


def test_workspace_profile_overrides_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    own = write(tmp_path / "device_profiles" / "phone-4t.toml",
                'name = "phone-4t"\n[execution]\nthreads = 2\n')
    write(tmp_path / "device_profiles" / "lab-pixel.toml", 'name = "lab-pixel"\n')
    entries = {e.name: e for e in list_profiles(tmp_path)}
    phone = entries["phone-4t"]
    assert (phone.source, phone.path) == ("workspace", own)
    assert phone.shadows == shipped_profiles_dir() / "phone-4t.toml"
    assert phone.profile is not None and phone.profile.execution.threads == 2
    assert entries["lab-pixel"].source == "workspace"
    assert entries["ci-host"].source == "shipped"

    loaded = load_profile("phone-4t", tmp_path)
    assert loaded.execution.threads == 2
    assert (loaded.origin, loaded.source) == ("workspace", str(own))
    assert load_profile("ci-host", tmp_path).origin == "shipped"


def test_broken_workspace_profile_is_listed_not_fatal(tmp_path: Path) -> None:
    bad = write(tmp_path / "device_profiles" / "bad.toml",
                'name = "bad"\n[execution]\nthread = 2\n')
    write(tmp_path / "device_profiles" / "typo.toml", "name = \n")
    entries = {e.name: e for e in list_profiles(tmp_path)}
    assert not entries["bad"].ok
    assert entries["bad"].error == (
        f"{bad}: execution.thread: unknown key (did you mean 'threads'?)")
    assert entries["typo"].error is not None and "invalid TOML" in entries["typo"].error
    assert entries["phone-4t"].ok
    with pytest.raises(ProfileError, match="did you mean 'threads'"):
        load_profile("bad", tmp_path)


@pytest.mark.parametrize("workspace", [False, True])
def test_unknown_profile_lists_known_names_and_a_close_match(
    tmp_path: Path, workspace: bool
) -> None:
    with pytest.raises(NotFoundError) as info:
        load_profile("phone-4", tmp_path if workspace else None)
    message = str(info.value)
    assert "unknown device profile 'phone-4'" in message
    assert "did you mean 'phone-4t'?" in message
    assert "known profiles: big-core-1t, ci-host, iot-256mb, phone-4t" in message


def test_load_profile_accepts_a_toml_path(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.toml", 'name = "custom"\n[execution]\nthreads = 3\n')
    profile = load_profile(str(path), None)
    assert (profile.name, profile.execution.threads, profile.origin) == ("custom", 3, "file")


def test_copy_shipped_profiles_copies_all_then_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "ws" / "device_profiles"
    copied = copy_shipped_profiles(dest)
    assert [p.name for p in copied] == [p.name for p in SHIPPED]
    assert all(p.read_bytes() == (shipped_profiles_dir() / p.name).read_bytes() for p in copied)
    assert copy_shipped_profiles(dest) == []


def test_copy_shipped_profiles_never_overwrites(tmp_path: Path) -> None:
    mine = write(tmp_path / "phone-4t.toml", 'name = "phone-4t"  # my edits\n')
    copied = copy_shipped_profiles(tmp_path)
    assert mine not in copied
    assert mine.read_text() == 'name = "phone-4t"  # my edits\n'
    assert tmp_path / "ci-host.toml" in copied


def test_a_time_flag_wins_over_the_profile_value_it_contradicts() -> None:
    from devtrack.benchmarking import BenchOverrides
    from devtrack.core.profile import MeasurementSettings, Profile
    from devtrack.errors import UsageError

    profile = Profile(name="p", measurement=MeasurementSettings(min_time_s=2.0, max_time_s=20.0))
    shorter = BenchOverrides(max_time_s=1.0).apply(profile).measurement
    assert (shorter.min_time_s, shorter.max_time_s) == (1.0, 1.0)
    longer = BenchOverrides(min_time_s=30.0).apply(profile).measurement
    assert (longer.min_time_s, longer.max_time_s) == (30.0, 30.0)
    with pytest.raises(UsageError, match="--min-time 3 is longer than --max-time 1"):
        BenchOverrides(min_time_s=3.0, max_time_s=1.0).apply(profile)
