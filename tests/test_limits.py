"""core/limits.py through bench, check and compare: bounds shared by profile keys and flags,
and the timeout rule: a profile's timeout_s is honoured as written, and flags that ask for
more than it holds are refused naming the flag (issue 10, items 7 and 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtrack.benchmarking import BenchOverrides
from devtrack.core.limits import pair_seconds, worker_seconds
from devtrack.core.profile import ExecutionSettings, MeasurementSettings, Profile
from devtrack.errors import UsageError
from devtrack.pairing import RerunSettings, check_pair_fits, effective_settings, fitting_repeats
from tests.test_cli_errors import assert_clean_error

SHORT = """
name = "short"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 12
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = 0.1
max_time_s = 0.5
target_rel_ci = 0.05
[budgets]
max_latency_regression_pct = 5.0
"""


def short_profile(timeout_s: float = 12.0, min_time_s: float = 0.1) -> Profile:
    return Profile(name="short", source="short.toml",
                   execution=ExecutionSettings(timeout_s=timeout_s),
                   measurement=MeasurementSettings(min_time_s=min_time_s, max_time_s=0.5))


def test_a_short_timeout_that_fits_is_honoured_not_raised() -> None:
    profile = short_profile(timeout_s=12.0)
    assert worker_seconds(0.5) <= 12.0
    ran = BenchOverrides().apply(profile)
    assert ran.execution.timeout_s == 12.0  # was raised to 2 × max_time_s + 30 = 31 s
    assert ran.hash == profile.hash


@pytest.mark.parametrize(("overrides", "needle"), [
    (BenchOverrides(max_time_s=10.0), "--max-time 10 does not fit in profile short's "
                                      "execution.timeout_s (12 s): a worker needs up to 21 s"),
    (BenchOverrides(max_time_s=10.0), "give --max-time 4 or less, or raise timeout_s in "
                                      "short.toml"),
    (BenchOverrides(min_time_s=9.0), "--min-time 9 does not fit"),
])
def test_a_time_flag_that_does_not_fit_the_timeout_is_refused_naming_it(
        overrides: BenchOverrides, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        overrides.apply(short_profile())
    assert needle in str(info.value)


def test_a_profile_built_in_code_that_does_not_fit_is_refused_too() -> None:
    with pytest.raises(UsageError) as info:
        BenchOverrides().apply(short_profile(timeout_s=5.0))
    assert "profile short: execution.timeout_s (5 s) is too short" in str(info.value)


def test_the_longest_window_suggested_really_fits() -> None:
    BenchOverrides(max_time_s=4.0).apply(short_profile())  # "give --max-time 4 or less"


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"threads": 100000}, "--threads: must be <= 256, got 100000"),
    ({"threads": 2**70}, "--threads: must be <= 256, got 1180591620717411303424"),
    ({"threads": 0}, "--threads: must be >= 1"),
    ({"min_runs": 10**7}, "--runs: must be <= 1000000"),
    ({"max_time_s": 3601.0}, "--max-time: must be <= 3600"),
    ({"min_time_s": -1.0}, "--min-time: must be >= 0"),
])
def test_override_bounds_are_the_profile_keys_bounds(kwargs: dict[str, float],
                                                     needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")):
        BenchOverrides(**kwargs)  # type: ignore[arg-type]


def test_side_by_side_repeats_must_fit_the_timeout() -> None:
    profile = short_profile(timeout_s=12.0)  # repeats of 0.2 s: 1.3 s each after 5 s start
    assert pair_seconds(4, 0.2) <= 12.0 < pair_seconds(6, 0.2)
    check_pair_fits(profile, RerunSettings(repeats=4))
    with pytest.raises(UsageError) as info:
        check_pair_fits(profile, RerunSettings(repeats=6))
    message = str(info.value)
    assert "--repeats 6 does not fit in profile short's execution.timeout_s (12 s)" in message
    assert "give --repeats 4 or fewer" in message
    assert fitting_repeats(profile) == 4


def test_when_no_repeats_fit_the_advice_is_the_timeout() -> None:
    with pytest.raises(UsageError, match=r"a side-by-side measurement does not fit .*raise "
                                         r"timeout_s"):
        check_pair_fits(Profile(name="p", execution=ExecutionSettings(timeout_s=10.0)))


@pytest.mark.parametrize(("timeout_s", "repeats"), [(120.0, 24), (20.0, 8), (12.0, 4)])
def test_the_default_cap_takes_only_the_repeats_that_fit(timeout_s: float,
                                                         repeats: int) -> None:
    profile = Profile(name="p", execution=ExecutionSettings(timeout_s=timeout_s))
    assert effective_settings(profile, None).repeats == repeats
    check_pair_fits(profile)  # the default is trimmed, never refused while 4 fit


def test_a_given_cap_is_checked_not_trimmed() -> None:
    profile = Profile(name="p", execution=ExecutionSettings(timeout_s=20.0))
    assert effective_settings(profile, RerunSettings(repeats=24)).repeats == 24
    with pytest.raises(UsageError, match=r"--repeats 24 does not fit .*give --repeats 8 or "
                                         r"fewer"):
        check_pair_fits(profile, RerunSettings(repeats=24))


@pytest.fixture
def short_ws(in_ws: Path, mlp_onnx: Path, mlp_onnx_b: Path, run_cli) -> Path:
    (in_ws / "device_profiles" / "short.toml").write_text(SHORT)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    assert run_cli("register", mlp_onnx_b, "-m", "kws", "-v", "1.1",
                   "--parent", "1.0").exit_code == 0
    return in_ws


@pytest.mark.parametrize(("args", "needle"), [
    (("bench", "kws@1.0", "-p", "short", "--max-time", "10"), "--max-time 10 does not fit"),
    (("bench", "kws@1.0", "-p", "short", "--min-time", "9"), "--min-time 9 does not fit"),
    (("bench", "kws@1.0", "-p", "short", "--threads", "100000"),
     "'--threads': 100000 is not in the range 1<=x<=256"),
    (("bench", "kws@1.0", "-p", "short", "--threads", "99999999999999999999999"),
     "'--threads'"),
    (("bench", "kws@1.0", "-p", "short", "--runs", "10000000"), "'--runs'"),
    (("bench", "kws@1.0", "-p", "short", "--max-time", "1e9"), "'--max-time'"),
    (("compare", "kws@1.0", "kws@1.1", "-p", "short", "--rerun", "--repeats", "8"),
     "--repeats 8 does not fit in profile short's execution.timeout_s (12 s)"),
    (("check", "kws@1.1", "-p", "short", "--repeats", "8"), "--repeats 8 does not fit"),
    (("check", "kws@1.1", "-p", "short", "--bench", "--repeats", "200"),
     "give --repeats 4 or fewer"),
])
def test_flags_that_cannot_fit_are_exit_2_before_anything_runs(
        short_ws: Path, run_cli, unchanged, args: tuple[str, ...], needle: str) -> None:
    assert_clean_error(run_cli(*args), needle)
    unchanged()


@pytest.mark.parametrize(("setting", "key"), [
    ("[execution]\nthreads = 100000", "execution.threads: must be <= 256"),
    ("[execution]\nthreads = 99999999999999999999999", "execution.threads: must be <= 256"),
    ("[execution]\ncpu_affinity = [0, 5000]", "execution.cpu_affinity[1]: expected a core id"),
    ("[execution]\ntimeout_s = 3", "execution.timeout_s: 3 s is too short"),
])
def test_a_profile_out_of_bounds_is_exit_2_naming_file_and_key(
        short_ws: Path, run_cli, unchanged, setting: str, key: str) -> None:
    path = short_ws / "device_profiles" / "wild.toml"
    path.write_text(f'name = "wild"\n{setting}\n')
    before = run_cli("results", "kws@1.0", "--json").out
    assert_clean_error(run_cli("bench", "kws@1.0", "-p", "wild"), str(path), key)
    assert run_cli("results", "kws@1.0", "--json").out == before  # no failed run stored
    unchanged()
