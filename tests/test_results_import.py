"""`devtrack results import`: benchmark_model logs stored as runs holding only aggregates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_errors import assert_clean_error

DATA = Path(__file__).parent / "data" / "benchmark_model"

PIXEL_PROFILE = """
name = "pixel8"
description = "a phone's benchmark_model logs, imported"
formats = ["tflite"]
[execution]
threads = 4
[litert]
xnnpack = true
[budgets]
latency_p90_ms = 1300.0
max_latency_regression_pct = 5.0
"""


@pytest.fixture
def phone_ws(in_ws: Path, mlp_tflite: Path, mlp_onnx: Path, run_cli) -> Path:
    (in_ws / "device_profiles" / "pixel8.toml").write_text(PIXEL_PROFILE, encoding="utf-8")
    for version in ("1.0.0", "1.1.0"):
        assert run_cli("register", mlp_tflite, "-m", "kws", "-v", version).exit_code == 0
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "2.0.0").exit_code == 0
    return in_ws


def _import(run_cli, log: str | Path, release: str = "kws@1.0.0", profile: str = "pixel8",
            *extra: str):
    path = log if isinstance(log, Path) else DATA / log
    return run_cli("results", "import", "--format", "benchmark_model", path, "--release",
                   release, "--profile", profile, *extra)


@pytest.mark.both_backends
def test_import_stores_a_run_with_only_aggregates_sealed_in_the_audit_trail(
        phone_ws: Path, run_cli) -> None:
    result = _import(run_cli, "recent_info.log", "kws@1.0.0", "pixel8", "--json")
    assert result.exit_code == 0, result.err
    run = json.loads(result.out)
    assert run["status"] == "ok" and run["stop_reason"] == "benchmark_model"
    assert run["n"] == 50
    assert run["p50_ms"] == pytest.approx(1239.807)
    assert run["p95_ms"] == pytest.approx(1247.415)
    assert run["p90_ms"] is None and run["ci_low_ms"] is None
    assert run["init_ms"] == pytest.approx(5.579)
    assert run["first_ms"] == pytest.approx(1357.602)
    assert run["peak_rss_mb"] == pytest.approx(113.441)
    assert any("only aggregates" in w for w in run["warnings"])
    shown = json.loads(run_cli("results", "kws@1.0.0", "--json", "--samples").out)
    assert shown[0]["samples_ms"] == [] and shown[0]["counts"] is True
    text = run_cli("results", "kws@1.0.0")
    assert text.exit_code == 0 and "pixel8" in text.out
    log = run_cli("log", "kws", "--json")
    events = json.loads(log.out)
    bench = [e for e in events if e["kind"] == "bench"]
    assert len(bench) == 1
    assert bench[0]["payload"]["source"]["tool"] == "benchmark_model"
    assert bench[0]["payload"]["source"]["log_name"] == "recent_info.log"
    assert run_cli("audit", "verify").exit_code == 0


def test_an_imported_run_edited_by_hand_fails_audit_verify(phone_ws: Path, run_cli) -> None:
    import sqlite3

    assert _import(run_cli, "recent_info.log").exit_code == 0
    conn = sqlite3.connect(phone_ws / ".devtrack" / "devtrack.db")
    with conn:
        conn.execute("UPDATE runs SET p50_ms = 900.0")
    conn.close()
    assert run_cli("audit", "verify").exit_code == 1


def test_the_text_output_says_only_aggregates(phone_ws: Path, run_cli) -> None:
    result = _import(run_cli, "logcat_threadtime.log")
    assert result.exit_code == 0, result.err
    assert "median 141.3 ms over 25 runs" in result.out
    assert "only aggregates" in result.out


@pytest.mark.parametrize(("log", "release", "profile", "needles"), [
    ("crashed_allocate.log", "kws@1.0.0", "pixel8", ["not a finished benchmark_model run",
                                                     "STABLEHLO_COMPOSITE"]),
    ("truncated_after_warmup.log", "kws@1.0.0", "pixel8", ["truncated"]),
    ("empty.log", "kws@1.0.0", "pixel8", ["is empty"]),
    ("not_benchmark_model.log", "kws@1.0.0", "pixel8", ["not a finished"]),
    ("recent_info.log", "kws@9.9.9", "pixel8", ["9.9.9"]),
    ("recent_info.log", "nope@1.0.0", "pixel8", ["nope"]),
    ("recent_info.log", "kws@1.0.0", "no-such-profile", ["no-such-profile"]),
    ("recent_info.log", "kws@2.0.0", "phone-4t", ["onnx release", "benchmark_model"]),
    ("recent_info.log", "kws@1.0.0", "big-core-1t", ["4 threads", "execution.threads = 1"]),
    ("recent_info.log", "kws@1.0.0", "iot-256mb", ["threads"]),
    ("no_such_file.log", "kws@1.0.0", "pixel8", ["no such log file"]),
])
def test_bad_input_is_one_line_exit_2_and_stores_nothing(
        phone_ws: Path, run_cli, unchanged, log: str, release: str, profile: str,
        needles: list[str]) -> None:
    assert_clean_error(_import(run_cli, log, release, profile), *needles)
    unchanged()


def test_a_profile_that_does_not_run_tflite_is_refused(phone_ws: Path, run_cli,
                                                       unchanged) -> None:
    (phone_ws / "device_profiles" / "onnx-only.toml").write_text(
        'name = "onnx-only"\nformats = ["onnx"]\n[execution]\nthreads = 4\n', encoding="utf-8")
    assert_clean_error(_import(run_cli, "recent_info.log", "kws@1.0.0", "onnx-only"),
                       "does not run tflite")
    unchanged()


def test_xnnpack_off_in_the_log_against_a_profile_with_it_on_is_refused(
        phone_ws: Path, run_cli, tmp_path: Path, unchanged) -> None:
    log = tmp_path / "no-xnnpack.log"
    log.write_text((DATA / "recent_info.log").read_text().replace(
        "Use xnnpack: [1]", "Use xnnpack: [0]"), encoding="utf-8")
    assert_clean_error(_import(run_cli, log), "XNNPACK off", "litert.xnnpack = true")
    unchanged()


def test_unknown_format_and_a_directory_are_refused(phone_ws: Path, run_cli, unchanged,
                                                    tmp_path: Path) -> None:
    bad = run_cli("results", "import", "--format", "perf_test", DATA / "recent_info.log",
                  "--release", "kws@1.0.0", "-p", "pixel8")
    assert bad.exit_code == 2 and "Traceback" not in bad.err
    assert _import(run_cli, tmp_path).exit_code == 2
    unchanged()


@pytest.mark.both_backends
def test_the_same_log_twice_is_refused_the_second_time(phone_ws: Path, run_cli) -> None:
    assert _import(run_cli, "recent_info.log").exit_code == 0
    again = _import(run_cli, "recent_info.log")
    assert_clean_error(again, "already imported", "run 1")
    assert len(json.loads(run_cli("results", "kws@1.0.0", "--json").out)) == 1


def _two_imported(run_cli, tmp_path: Path, slower: float) -> None:
    """kws@1.0.0 from recent_info.log, kws@1.1.0 from the same log with every time × slower."""
    import re

    text = (DATA / "recent_info.log").read_text()

    def scale(match: re.Match[str]) -> str:
        return f"{match.group(1)}={float(match.group(2)) * slower:g}"

    scaled = re.sub(r"\b(first|curr|min|max|avg|std|p5|median|p95)=([0-9.e+]+)", scale, text)
    path = tmp_path / "slower.log"
    path.write_text(scaled, encoding="utf-8")
    assert _import(run_cli, "recent_info.log", "kws@1.0.0").exit_code == 0
    assert _import(run_cli, path, "kws@1.1.0").exit_code == 0


@pytest.mark.both_backends
def test_compare_shows_medians_side_by_side_and_no_verdict(phone_ws: Path, run_cli,
                                                           tmp_path: Path) -> None:
    _two_imported(run_cli, tmp_path, 1.5)
    result = run_cli("compare", "kws@1.0.0", "kws@1.1.0", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    profile = next(p for p in data["profiles"] if p["profile"] == "pixel8")
    assert profile["latency"] is None
    notes = " ".join(profile["notes"])
    assert "no statistical verdict" in notes and "×1.500" in notes
    text = run_cli("compare", "kws@1.0.0", "kws@1.1.0")
    assert "no statistical verdict" in text.out.replace("\n", " ")


@pytest.mark.both_backends
def test_check_on_stored_aggregates_is_inconclusive_with_the_reason(
        phone_ws: Path, run_cli, tmp_path: Path) -> None:
    _two_imported(run_cli, tmp_path, 1.5)
    result = run_cli("check", "kws@1.1.0", "--baseline", "kws@1.0.0", "-p", "pixel8",
                     "--no-rerun", "--json")
    data = json.loads(result.out)
    items = {i["name"]: i for i in data["profiles"][0]["checks"]}
    latency = items["max_latency_regression_pct"]
    assert "no statistical verdict" in latency["message"]
    assert "inconclusive" in latency["message"]
    p90 = items["latency_p90_ms"]
    assert "p95" in p90["message"]  # benchmark_model prints no p90: judged on p95


def test_an_imported_run_travels_in_a_bundle_and_verifies_there(
        phone_ws: Path, run_cli, tmp_path: Path) -> None:
    assert _import(run_cli, "recent_op_profile.log", "kws@1.0.0", "pixel8").exit_code == 2
    (phone_ws / "device_profiles" / "pixel8-2t.toml").write_text(
        PIXEL_PROFILE.replace('"pixel8"', '"pixel8-2t"').replace("threads = 4", "threads = 2"))
    assert _import(run_cli, "recent_op_profile.log", "kws@1.0.0", "pixel8-2t").exit_code == 0
    bundle = tmp_path / "kws.zip"
    assert run_cli("export", "kws@1.0.0", "-o", bundle).exit_code == 0
    other = tmp_path / "other"
    assert run_cli("init", other).exit_code == 0
    imported = run_cli("-w", other, "import", bundle)
    assert imported.exit_code == 0, imported.err
    runs = json.loads(run_cli("-w", other, "results", "kws@1.0.0", "--json").out)
    assert runs[0]["stop_reason"] == "benchmark_model" and runs[0]["op_profile"]["nodes"]
    assert run_cli("-w", other, "audit", "verify").exit_code == 0


def test_every_view_judges_the_p90_budget_of_an_imported_run_on_p95(
        phone_ws: Path, run_cli, tmp_path: Path) -> None:
    assert _import(run_cli, "recent_info.log").exit_code == 0  # p95 1247.4 ms, budget 1300
    row = json.loads(run_cli("releases", "kws", "--profile", "pixel8", "--json").out)
    assert {r["version"]: r["budget"] for r in row}["1.0.0"] == "pass"
    tight = PIXEL_PROFILE.replace("latency_p90_ms = 1300.0", "latency_p90_ms = 1240.0")
    (phone_ws / "device_profiles" / "pixel8.toml").write_text(tight)
    row = json.loads(run_cli("releases", "kws", "--profile", "pixel8", "--json").out)
    assert {r["version"]: r["budget"] for r in row}["1.0.0"] == "fail"
