"""Measuring on an Android phone through adb, against a stand-in adb that replays recorded
benchmark_model output (no phone is attached to these machines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import fake_adb
from tests.fake_adb import Phone
from tests.test_cli_errors import assert_clean_error

DATA = Path(__file__).parent / "data" / "benchmark_model"
SERIAL = "R58M123ABC"
PHONE = f"""
name = "pixel8"
formats = ["tflite"]
[execution]
target = "adb://{SERIAL}"
threads = 4
cpu_affinity = [4, 5, 6, 7]
timeout_s = 20
[measurement]
warmup_runs = 5
min_runs = 50
min_time_s = 1
max_time_s = 5
[budgets]
max_latency_regression_pct = 5.0
"""


@pytest.fixture(name="phone")
def _phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Phone:
    return fake_adb.start(tmp_path, monkeypatch, DATA / "recent_info.log")


@pytest.fixture
def phone_ws(in_ws: Path, mlp_tflite: Path, run_cli, phone: Phone) -> Path:
    (in_ws / "device_profiles" / "pixel8.toml").write_text(PHONE, encoding="utf-8")
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.0.0").exit_code == 0
    return in_ws


def _runs(run_cli, ref: str = "kws@1.0.0") -> list[dict[str, Any]]:
    return json.loads(run_cli("results", ref, "--json").out)


def test_bench_on_a_phone_pushes_once_runs_benchmark_model_and_stores_aggregates(
        phone_ws: Path, run_cli, phone: Phone) -> None:
    result = run_cli("bench", "kws@1.0.0", "-p", "pixel8", "--json")
    assert result.exit_code == 0, result.err
    run = _runs(run_cli)[0]
    assert run["status"] == "ok" and run["stop_reason"] == "benchmark_model"
    assert run["p50_ms"] == pytest.approx(1239.807) and run["n"] == 50
    assert run["peak_rss_mb"] == pytest.approx(113.441)
    assert run["environment"]["device"]["model"] == "Pixel 8"
    assert run["environment"]["host"] == f"adb://{SERIAL}"
    assert len(phone.pushes()) == 1
    (command,) = phone.benchmark_commands()
    sha = command.split("--graph=/data/local/tmp/devtrack/")[1].split(".tflite")[0]
    assert len(sha) == 64
    for part in ("exec taskset f0 /data/local/tmp/benchmark_model", "--num_threads=4",
                 "--use_xnnpack=true", "--report_peak_memory_footprint=true",
                 "--warmup_runs=5", "--num_runs=50", "--min_secs=1", "--max_secs=5"):
        assert part in command
    assert "--enable_op_profiling" not in command
    assert all(c[:3] == ["-s", SERIAL, c[2]] for c in phone.calls())
    # the model is cached on the phone by sha256: a second bench pushes nothing
    phone.reset_calls()
    assert run_cli("bench", "kws@1.0.0", "-p", "pixel8").exit_code == 0
    assert phone.pushes() == [] and len(phone.benchmark_commands()) == 1
    assert run_cli("audit", "verify").exit_code == 0


def test_op_profile_asks_benchmark_model_for_op_tables_and_stores_them(
        phone_ws: Path, run_cli, phone: Phone) -> None:
    phone.configure(output=str(DATA / "recent_op_profile.log"))
    assert run_cli("bench", "kws@1.0.0", "-p", "pixel8", "--op-profile").exit_code == 0
    assert "--enable_op_profiling=true" in phone.benchmark_commands()[0]
    run = _runs(run_cli)[0]
    ops = {o["op"]: o["total_ms"] for o in run["op_profile"]["ops"]}
    assert ops["Convolution (NHWC, QC8) IGEMM"] == pytest.approx(12.61)
    assert len(run["op_profile"]["nodes"]) == 8


def test_a_phone_without_benchmark_model_fails_the_run_naming_it(
        phone_ws: Path, run_cli, phone: Phone) -> None:
    phone.configure(binary=False)
    result = run_cli("bench", "kws@1.0.0", "-p", "pixel8")
    assert result.exit_code == 1 and "Traceback" not in result.err
    run = _runs(run_cli)[0]
    assert run["status"] == "failed"
    assert f"benchmark_model is missing on {SERIAL}" in run["error"]
    assert "/data/local/tmp/benchmark_model" in run["error"]
    assert phone.benchmark_commands() == []


def test_adb_check_lists_what_the_phone_lacks(phone_ws: Path, phone: Phone) -> None:
    from devtrack.bench.adb import adb_check
    from devtrack.profiles import load_profile

    profile = load_profile("pixel8", phone_ws)
    assert adb_check(profile) == []
    phone.configure(binary=False, taskset=False)
    problems = adb_check(profile)
    assert len(problems) == 2
    assert "benchmark_model is missing" in problems[0] and "taskset" in problems[1]
    phone.configure(state="unauthorized")
    assert "unauthorized" in adb_check(profile)[0]
    phone.configure(state="missing")
    assert "not reachable" in adb_check(profile)[0]


def test_no_adb_client_is_a_failed_run_naming_it(phone_ws: Path, run_cli) -> None:
    path = phone_ws / "device_profiles" / "pixel8.toml"
    path.write_text(PHONE + '[adb]\nadb = "/nonexistent/platform-tools/adb"\n')
    assert run_cli("bench", "kws@1.0.0", "-p", "pixel8").exit_code == 1
    assert "adb client '/nonexistent/platform-tools/adb' not found" in _runs(run_cli)[0]["error"]


def test_a_crash_on_the_phone_is_a_failed_run_with_the_tool_s_reason(
        phone_ws: Path, run_cli, phone: Phone) -> None:
    phone.configure(output=str(DATA / "crashed_allocate.log"), exit_code=1)
    assert run_cli("bench", "kws@1.0.0", "-p", "pixel8").exit_code == 1
    error = _runs(run_cli)[0]["error"]
    assert "not a finished benchmark_model run" in error and "STABLEHLO_COMPOSITE" in error
    assert "exit code 1" in error


def test_a_hung_tool_is_killed_on_the_phone_at_the_timeout(phone_ws: Path, phone: Phone,
                                                          mlp_tflite: Path) -> None:
    import hashlib

    from devtrack.bench.adb import run_on_phone
    from devtrack.profiles import load_profile

    phone.configure(sleep_s=30)
    sha = hashlib.sha256(mlp_tflite.read_bytes()).hexdigest()
    result = run_on_phone({"artifact_path": str(mlp_tflite), "sha256": sha},
                          load_profile("pixel8", phone_ws), timeout_s=1.5)
    assert result["status"] == "failed" and "timed out after 1.5 s" in result["error"]
    assert [c for c in phone.calls() if c[2:] == ["shell", f"kill {fake_adb.PID}"]]


def test_compare_rerun_on_a_phone_is_refused_with_the_reason(phone_ws: Path, run_cli,
                                                            mlp_tflite: Path) -> None:
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.1.0").exit_code == 0
    result = run_cli("compare", "kws@1.0.0", "kws@1.1.0", "--rerun", "-p", "pixel8")
    assert_clean_error(result, "no side-by-side", "benchmark_model", f"adb://{SERIAL}")


def test_check_on_a_phone_benches_both_and_is_inconclusive_with_the_reason(
        phone_ws: Path, run_cli, phone: Phone, mlp_tflite: Path, tmp_path: Path) -> None:
    import hashlib

    from devtrack.builders.tflite_models import build_tflite_mlp

    other = build_tflite_mlp(tmp_path / "b.tflite", in_features=16, hidden=(8,), classes=4,
                             seed=7)
    assert run_cli("register", other, "-m", "kws", "-v", "1.1.0").exit_code == 0
    phone.configure(outputs={hashlib.sha256(other.read_bytes()).hexdigest():
                             str(DATA / "logcat_threadtime.log"),
                             hashlib.sha256(mlp_tflite.read_bytes()).hexdigest():
                             str(DATA / "recent_info.log")})
    result = run_cli("check", "kws@1.1.0", "--baseline", "kws@1.0.0", "-p", "pixel8",
                     "--bench", "--json")
    data = json.loads(result.out)
    (item,) = [i for i in data["profiles"][0]["checks"]
               if i["name"] == "max_latency_regression_pct"]
    assert item["status"] == "pass"
    assert "inconclusive" in item["message"] and "no statistical verdict" in item["message"]
    assert "not possible on adb://" in item["message"]
    assert len(phone.benchmark_commands()) == 2  # each release measured once, on the phone
    strict = run_cli("check", "kws@1.1.0", "--baseline", "kws@1.0.0", "-p", "pixel8",
                     "--inconclusive", "fail", "--json")
    assert strict.exit_code == 1


def test_bisect_on_a_phone_is_refused_with_the_reason(phone_ws: Path, run_cli,
                                                      mlp_tflite: Path) -> None:
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.1.0").exit_code == 0
    result = run_cli("bisect", "kws", "--good", "1.0.0", "--bad", "1.1.0", "-p", "pixel8")
    assert_clean_error(result, "no side-by-side", "benchmark_model")


def test_check_on_a_phone_with_an_unmeasured_baseline_says_how_to_measure_it(
        phone_ws: Path, run_cli, mlp_tflite: Path) -> None:
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.1.0").exit_code == 0
    assert run_cli("bench", "kws@1.1.0", "-p", "pixel8").exit_code == 0
    result = run_cli("check", "kws@1.1.0", "--baseline", "kws@1.0.0", "-p", "pixel8", "--json")
    assert result.exit_code == 1
    data = json.loads(result.out)
    (item,) = [i for i in data["profiles"][0]["checks"]
               if i["name"] == "max_latency_regression_pct"]
    assert item["status"] == "not_measured"
    assert "devtrack bench kws@1.0.0 --profile pixel8" in item["message"]
    assert "--no-rerun" not in item["message"]


def test_lab_check_on_a_phone_says_what_it_is_and_what_it_lacks(
        phone_ws: Path, run_cli, phone: Phone) -> None:
    ready = run_cli("lab", "check", "pixel8")
    assert ready.exit_code == 0, ready.err
    assert "pixel8 (adb://R58M123ABC): ready" in ready.out
    assert "Google Pixel 8, Android 14, arm64-v8a" in ready.out
    report = json.loads(run_cli("lab", "check", "pixel8", "--json").out)[0]
    assert report["reachable"] is True and report["info"]["model"] == "Pixel 8"
    phone.configure(binary=False)
    missing = run_cli("lab", "check", "pixel8")
    assert missing.exit_code == 1 and "NOT READY" in missing.out
    assert "benchmark_model is missing on R58M123ABC" in missing.err
    assert "Traceback" not in missing.err
    phone.configure(state="missing")
    gone = run_cli("lab", "check", "pixel8", "--json")
    assert gone.exit_code == 1
    assert json.loads(gone.out)[0]["reachable"] is False
    listed = json.loads(run_cli("lab", "--json").out)
    assert {r["profile"]: r["reachable"] for r in listed}["pixel8"] is False
