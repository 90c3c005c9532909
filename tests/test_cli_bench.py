"""Profiles, bench and results as a user runs them, on tiny real models and real runtimes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli_errors import assert_clean_error

TINY_PROFILE = """
name = "tiny"
description = "fast settings for tests"
formats = ["onnx", "tflite"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 3
min_runs = 20
min_time_s = 0.1
max_time_s = 0.5
target_rel_ci = 0.05
[budgets]
latency_p90_ms = 1000.0
"""

BENCH_KEYS = {"model", "version", "profile", "status", "error", "init_ms", "first_ms", "p50_ms",
              "p90_ms", "p99_ms", "mean_ms", "std_ms", "n", "peak_rss_mb", "load_delta_mb"}


def default_sigint() -> None:
    """Ctrl-C as on a terminal, even when the suite runs as a background job (whose
    children start with SIGINT ignored, so Python would never raise KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def tiny_ws(in_ws: Path) -> Path:
    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    return in_ws


def test_profiles_lists_shipped_and_workspace_profiles_as_json(tiny_ws: Path, run_cli) -> None:
    result = run_cli("profiles", "--json")
    assert result.exit_code == 0, result.err
    entries = {e["name"]: e for e in json.loads(result.out)}
    assert {"big-core-1t", "phone-4t", "iot-256mb", "ci-host", "tiny"} <= set(entries)
    tiny = entries["tiny"]
    assert {"name", "path", "threads", "formats", "budgets"} <= set(tiny)
    assert tiny["threads"] == 1 and tiny["formats"] == ["onnx", "tflite"]
    assert tiny["budgets"] == {"latency_p90_ms": 1000.0}
    assert tiny["path"].endswith("tiny.toml")
    assert "tiny" in run_cli("profiles").out


def test_profiles_reports_a_typo_with_the_key_it_meant(tiny_ws: Path, run_cli) -> None:
    (tiny_ws / "device_profiles" / "broken.toml").write_text(
        'name = "broken"\n[execution]\nthread = 2\n')
    result = run_cli("profiles", "--json")
    assert result.exit_code == 2
    broken = next(e for e in json.loads(result.out) if e["name"] == "broken")
    assert "broken.toml" in broken["error"] and "execution.thread" in broken["error"]
    assert "did you mean 'threads'" in broken["error"]


def test_bench_measures_onnx_and_tflite_and_stores_runs(tiny_ws: Path, mlp_onnx: Path,
                                                        mlp_tflite: Path, run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.1")
    result = run_cli("bench", "kws@1.0", "kws@1.1", "--profile", "tiny", "--json")
    assert result.exit_code == 0, result.err
    runs = json.loads(result.out)
    assert [(r["version"], r["status"]) for r in runs] == [("1.0", "ok"), ("1.1", "ok")]
    for run in runs:
        assert set(run) >= BENCH_KEYS
        assert run["n"] >= 20
        assert 0 < run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"]
        assert run["peak_rss_mb"] > 0 and run["init_ms"] > 0 and run["first_ms"] > 0
    assert runs[0]["runtime"] == "onnxruntime"
    assert "litert" in runs[1]["runtime"].lower() or "tflite" in runs[1]["runtime"].lower()
    stored = json.loads(run_cli("results", "kws@1.0", "--json", "--samples").out)
    assert len(stored) == 1 and stored[0]["p50_ms"] == runs[0]["p50_ms"]
    assert len(stored[0]["samples_ms"]) == stored[0]["n"]
    assert "tiny" in run_cli("results", "kws@1.0").out
    events = json.loads(run_cli("log", "kws", "--kind", "bench", "--json").out)
    assert len(events) == 2 and events[0]["payload"]["profile"] == "tiny"


def test_bench_without_a_profile_says_how_to_choose(tiny_ws: Path, mlp_onnx: Path,
                                                    run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    assert_clean_error(run_cli("bench", "kws@1.0"), "--profile NAME", "--all-profiles")
    assert_clean_error(run_cli("bench", "kws@1.0", "--profile", "tinny"),
                       "unknown device profile 'tinny'", "did you mean 'tiny'")


def test_bench_dynamic_input_without_spec_names_the_input_and_flag(
    tiny_ws: Path, dynamic_onnx: Path, run_cli, unchanged
) -> None:
    run_cli("register", dynamic_onnx, "-m", "vad", "-v", "5.0")
    from tests.conftest import snapshot_workspace

    before = snapshot_workspace(tiny_ws)
    result = run_cli("bench", "vad@5.0", "--profile", "tiny")
    assert_clean_error(result, "'input'", "--input input=")
    assert snapshot_workspace(tiny_ws) == before
    ok = run_cli("bench", "vad@5.0", "--profile", "tiny", "--input", "input=1x512",
                 "--fill", "sr=16000", "--json")
    assert ok.exit_code == 0, ok.err
    assert json.loads(ok.out)[0]["status"] == "ok"


def test_bench_custom_op_fails_naming_the_op(tiny_ws: Path, model_dir: Path, run_cli) -> None:
    from devtrack.builders.onnx_models import build_custom_op

    path = model_dir / "custom.onnx"
    build_custom_op(path)
    run_cli("register", path, "-m", "fancy", "-v", "1")
    result = run_cli("bench", "fancy@1", "--profile", "tiny", "--json")
    assert result.exit_code == 1
    [run] = json.loads(result.out)
    assert run["status"] == "failed"
    assert "FancyGelu" in run["error"]


def test_profile_that_does_not_run_the_format_is_skipped(tiny_ws: Path, mlp_onnx: Path,
                                                         run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    result = run_cli("bench", "kws@1.0", "--profile", "iot-256mb")
    assert result.exit_code == 2
    assert "does not run onnx" in result.err


def test_ctrl_c_keeps_finished_runs_marks_the_interrupted_one_aborted(
    tiny_ws: Path, mlp_onnx: Path, run_cli
) -> None:
    slow = TINY_PROFILE.replace('"tiny"', '"slow"').replace("min_time_s = 0.1", "min_time_s = 30")
    slow = slow.replace("max_time_s = 0.5", "max_time_s = 40").replace("timeout_s = 60",
                                                                       "timeout_s = 120")
    (tiny_ws / "device_profiles" / "slow.toml").write_text(slow)
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    env = {**os.environ, "DEVTRACK_WORKSPACE": str(tiny_ws), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtrack", "bench", "kws@1.0", "--profile", "tiny",
         "--profile", "slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=default_sigint,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # plain progress lines, since stderr is not a terminal
        seen.append(line)
        if line.startswith("[2/2]"):
            break
    time.sleep(2.0)  # let the second worker start measuring
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    runs = json.loads(run_cli("results", "kws@1.0", "--json").out)
    assert [(r["profile"], r["status"]) for r in runs] == [("tiny", "ok"), ("slow", "aborted")]


@pytest.mark.parametrize(("flag", "value"), [("--max-time", "inf"), ("--min-time", "nan")])
def test_non_finite_time_overrides_are_refused(tiny_ws: Path, mlp_onnx: Path, run_cli,
                                               flag: str, value: str) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    assert_clean_error(run_cli("bench", "kws@1.0", "-p", "tiny", flag, value), flag, value)


def test_results_for_a_mistyped_profile_names_the_profile_it_meant(tiny_ws: Path,
                                                                   mlp_onnx: Path,
                                                                   run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    assert_clean_error(run_cli("results", "kws@1.0", "-p", "tinny"),
                       "unknown device profile 'tinny'", "did you mean 'tiny'")
    assert_clean_error(run_cli("history", "kws", "-p", "tinny"), "did you mean 'tiny'")


def test_check_refuses_unwritable_reports_before_storing_anything(
    tiny_ws: Path, mlp_onnx: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    from tests.conftest import snapshot_workspace

    before = snapshot_workspace(tiny_ws)
    assert_clean_error(run_cli("check", "kws@1.0", "-p", "tiny", "--no-rerun", "--markdown",
                               "/proc/devtrack.md"), "--markdown", "cannot write")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tiny_ws))
    assert_clean_error(run_cli("check", "kws@1.0", "-p", "tiny", "--no-rerun"),
                       "GITHUB_STEP_SUMMARY", "is a folder")
    assert snapshot_workspace(tiny_ws) == before


def test_op_profile_is_stored_and_shown(tiny_ws: Path, mlp_onnx: Path, run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    result = run_cli("bench", "kws@1.0", "-p", "tiny", "--op-profile", "--json")
    assert result.exit_code == 0, result.err
    ops = json.loads(result.out)[0]["op_profile"]["ops"]
    assert ops and {"op", "calls", "total_ms", "pct"} <= set(ops[0])
    assert abs(sum(o["pct"] for o in ops) - 100) < 1
    assert "top operators by time" in run_cli("results", "kws@1.0").out


def test_a_missing_artifact_says_how_to_restore_it_and_restoring_works(
        tiny_ws: Path, mlp_onnx: Path, run_cli) -> None:
    import shutil

    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    sha = json.loads(run_cli("show", "kws@1.0", "--json").out)["sha256"]
    stored = next((tiny_ws / ".devtrack").rglob(f"{sha}*"))
    stored.unlink()
    missing = run_cli("bench", "kws@1.0", "--profile", "tiny")
    assert missing.exit_code == 2
    message = missing.err + missing.out
    assert "is missing from the store" in message and str(stored) in message, message
    shutil.copyfile(mlp_onnx, stored)
    restored = run_cli("bench", "kws@1.0", "--profile", "tiny", "--json")
    assert restored.exit_code == 0, restored.err
    assert json.loads(restored.out)[0]["status"] == "ok"


def test_bench_progress_on_a_terminal_has_one_line_per_device() -> None:
    """Devices measure at once: each has its own line with its job and phase."""
    import io

    from rich.console import Console

    from devtrack.cli import bench_cmds
    from devtrack.orchestration import JobEvent

    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    original = bench_cmds.err_console
    bench_cmds.err_console = lambda: screen  # type: ignore[assignment]
    try:
        with bench_cmds._Progress() as progress:
            progress.tty = True
            jobs = [(1, "labtest://a", "kws@1.0 on board"), (2, "local", "kws@1.0 on tiny"),
                    (3, "local", "kws@1.0 on big")]
            for index, device, label in jobs:
                progress(JobEvent("planned", index, 3, device, label))
            for index, device, label in jobs[:2]:
                progress(JobEvent("started", index, 3, device, label))
            progress(JobEvent("phase", 1, 3, "labtest://a", "kws@1.0 on board",
                              phase="measure", elapsed_s=2.0, rss_mb=40.0))
            progress(JobEvent("phase", 2, 3, "local", "kws@1.0 on tiny", phase="load",
                              elapsed_s=0.4))
            tasks = {t.description.split(":")[0]: t for t in progress._bar.tasks}
            assert tasks["labtest"].description == (
                "labtest://a: kws@1.0 on board: measure 2 s, 40 MB")
            assert tasks["local"].description == "local: kws@1.0 on tiny: load 0 s"
            assert (tasks["labtest"].total, tasks["local"].total) == (1, 2)
            progress(JobEvent("finished", 1, 3, "labtest://a", "kws@1.0 on board",
                              status="failed", run={"status": "failed", "error": "boom"}))
            assert tasks["labtest"].completed == 1
    finally:
        bench_cmds.err_console = original  # type: ignore[assignment]
    assert "kws@1.0 on board: FAILED: boom" in screen.file.getvalue()  # type: ignore[attr-defined]
