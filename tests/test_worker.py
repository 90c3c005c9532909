"""The isolated worker end to end through run_job: phases, stats, memory, and every failure."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devtrack.bench.environment import busy_warning
from devtrack.bench.memory import MemoryProbe
from devtrack.bench.protocol import decode_samples, encode_samples
from devtrack.bench.runner import Progress, clamp_affinity, run_job
from devtrack.builders.onnx_models import build_custom_op, build_matmul_chain
from devtrack.errors import Aborted
from tests.test_cli_bench import default_sigint

FAST = {"warmup_runs": 5, "min_runs": 30, "min_time_s": 0.2, "max_time_s": 1.0,
        "target_rel_ci": 0.01}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_job(path: Path, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "artifact_path": str(path), "sha256": sha(path), "format": path.suffix.lstrip("."),
        "input_specs": [], "fills": [], "options": {}, "measurement": dict(FAST), "seed": 0,
        "op_profile": False,
    }
    job.update(extra)
    return job


def run(job: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"threads": 1, "cpu_affinity": None, "memory_limit_mb": None,
                                "timeout_s": 60.0}
    settings.update(kwargs)
    return run_job(job, **settings)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_matmul_chain(tmp_path_factory.mktemp("w") / "chain.onnx", size=128, layers=4)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_hook(value: str) -> None:
        monkeypatch.setenv("DEVTRACK_TEST_HOOK", value)

    return set_hook


def test_a_run_reports_phases_stats_memory_and_environment(chain: Path) -> None:
    seen: list[Progress] = []
    result = run(make_job(chain, op_profile=True), progress=seen.append)
    assert result["status"] == "ok", result["error"]
    assert result["runtime"] == "onnxruntime" and result["runtime_version"]
    phases = result["phases"]
    for key in ("import_ms", "init_ms", "first_ms", "warmup_ms"):
        assert phases[key] > 0
    assert phases["warmup_runs"] == 5
    assert FAST["min_time_s"] <= phases["loop_s"] < FAST["max_time_s"] + 0.5
    stats = result["stats"]
    assert stats["n"] >= FAST["min_runs"]
    assert stats["min"] <= stats["median"] <= stats["p90"] <= stats["p95"] <= stats["p99"]
    assert stats["p99"] <= stats["max"]
    assert stats["ci_low"] <= stats["median"] <= stats["ci_high"]
    assert result["stop_reason"] in ("converged", "max_time")
    samples = decode_samples(result["samples_ms"])
    assert samples.size == stats["n"] and float(np.median(samples)) == pytest.approx(
        stats["median"])
    memory = result["memory"]
    assert memory["method"] == "VmHWM after clear_refs=5"
    assert 10 < memory["baseline_rss_mb"] <= memory["load_peak_mb"] <= memory["peak_rss_mb"]
    assert memory["inference_peak_mb"] <= memory["peak_rss_mb"]
    assert memory["load_delta_mb"] == pytest.approx(
        memory["load_peak_mb"] - memory["baseline_rss_mb"], abs=0.02)
    env = result["environment"]
    assert env["logical_cores"] >= 1 and env["cpu_model"] and env["numpy"] == np.__version__
    assert env["thread_env"]["OMP_NUM_THREADS"] == "1"
    assert env["load_average_before"] is not None and env["load_average_after"] is not None
    # Which op type tops the list is timing (Relu can beat MatMul on a tiny chain under load);
    # that the profile names the graph's op types is not.
    assert {"MatMul", "Relu"} <= {o["op"] for o in result["op_profile"]["ops"]}
    assert result["isolation"]["returncode"] == 0
    assert "measure" in {p.phase for p in seen}


@pytest.mark.parametrize("api", ["interpreter", "compiled_model"])
def test_a_tflite_run_records_the_runtime_and_no_op_profile(mlp_tflite: Path, api: str) -> None:
    job = make_job(mlp_tflite, options={"litert_api": api, "op_profile": True})
    result = run(job)
    assert result["status"] == "ok", result["error"]
    assert (result["runtime"], result["runtime_api"]) == ("ai-edge-litert", api)
    assert result["op_profile"] is None
    assert any(w.startswith("op profile not available") for w in result["warnings"])


def test_specs_and_fills_reach_the_worker(dynamic_onnx: Path) -> None:
    job = make_job(dynamic_onnx, input_specs=[{"name": "input", "shape": [1, 512]}],
                   fills=[{"name": "sr", "value": 16000}])
    result = run(job)
    assert result["status"] == "ok", result["error"]
    assert result["inputs"] == {"input": {"shape": [1, 512], "dtype": "float32"},
                                "sr": {"shape": [], "dtype": "int64"}}


def test_a_missing_spec_fails_with_the_input_named(dynamic_onnx: Path) -> None:
    result = run(make_job(dynamic_onnx))
    assert result["status"] == "failed"
    assert result["error"].startswith("input 'input' has dynamic shape")


def test_a_crash_is_a_failed_run_naming_the_signal(chain: Path, hook: Any) -> None:
    hook("abort")
    result = run(make_job(chain))
    assert result["status"] == "failed"
    assert result["error"].startswith("crashed: SIGABRT")
    assert result["phase"] == "load"


def test_a_segfault_is_named_too(chain: Path, hook: Any) -> None:
    hook("signal:SIGSEGV")
    assert run(make_job(chain))["error"].startswith("crashed: SIGSEGV")


def test_the_memory_cap_stops_the_worker(chain: Path, hook: Any) -> None:
    hook("allocate:400")
    result = run(make_job(chain), memory_limit_mb=200)
    assert result["status"] == "failed"
    assert result["error"].startswith("exceeded memory limit of 200 MB (resident ")
    assert result["isolation"]["observed_peak_rss_mb"] > 200


def test_the_timeout_stops_the_worker(chain: Path, hook: Any) -> None:
    hook("sleep")
    started = time.monotonic()
    result = run(make_job(chain), timeout_s=2)
    assert result == result | {"status": "failed", "error": "timed out after 2 s"}
    assert time.monotonic() - started < 10


def test_an_exception_in_the_worker_is_one_line_without_traceback(chain: Path,
                                                                   hook: Any) -> None:
    hook("raise")
    result = run(make_job(chain))
    assert result["status"] == "failed"
    assert result["error"] == "RuntimeError: DEVTRACK_TEST_HOOK=raise"
    assert "Traceback" in result["traceback"]  # kept for debugging, not in the message


def test_a_worker_that_exits_without_a_result_reports_its_stderr(chain: Path,
                                                                  hook: Any) -> None:
    hook("exit:3")
    result = run(make_job(chain))
    assert result["error"] == ("worker exited with code 3 without a result: "
                               "DEVTRACK_TEST_HOOK=exit:3: leaving without a result")
    assert result["isolation"]["stderr_tail"]


def test_a_sha_mismatch_fails_before_loading(chain: Path) -> None:
    result = run(make_job(chain, sha256="0" * 64))
    assert result["status"] == "failed"
    assert "sha256 mismatch" in result["error"] and result["phases"] == {}


def test_a_custom_op_fails_with_the_op_named(tmp_path: Path) -> None:
    result = run(make_job(build_custom_op(tmp_path / "custom.onnx")))
    assert result["status"] == "failed" and "FancyGelu" in result["error"]


def test_affinity_is_applied_and_reported(chain: Path) -> None:
    result = run(make_job(chain), cpu_affinity=[0])
    assert result["status"] == "ok"
    assert result["environment"]["cpu_affinity"] == [0]
    assert result["isolation"]["cpu_affinity"] == [0]


@pytest.mark.parametrize("requested, expected, warns", [
    ([0, 1], [0, 1], False),
    ([1, 7], [1], True),
    ([4, 5], [0, 1], True),
    (None, None, False),
])
def test_affinity_is_clamped_to_available_cores(requested: list[int] | None,
                                                expected: list[int] | None, warns: bool) -> None:
    chosen, warnings = clamp_affinity(requested, {0, 1})
    assert chosen == expected
    assert bool(warnings) == warns
    if warns:
        assert "not available here" in warnings[0]


def test_samples_blob_round_trips_as_float32() -> None:
    samples = np.array([1.5, 2.25, 1e-3], dtype=np.float32)
    blob = encode_samples(samples)
    assert len(blob) == 16  # 12 bytes of float32, base64
    np.testing.assert_array_equal(decode_samples(blob), samples)


@pytest.mark.parametrize("load, cores, expected", [
    ([1.8, 1.0, 0.5], 2, "machine busy: load average 1.80 on 2 cores"),
    ([1.2, 1.0, 0.5], 2, None),
    (None, 2, None),
])
def test_a_busy_machine_is_warned_about(load: list[float] | None, cores: int,
                                        expected: str | None) -> None:
    assert busy_warning({"load_average_before": load, "logical_cores": cores}) == expected


def test_the_memory_probe_resets_the_high_water_mark() -> None:
    probe = MemoryProbe()
    assert probe.method == "VmHWM after clear_refs=5"
    ballast = np.ones(64 * 1024 * 1024, dtype=np.uint8)
    high = probe.peak_mb()
    del ballast
    assert probe.reset_peak()
    assert probe.peak_mb() < high - 32
    assert probe.peak_mb() >= probe.rss_mb() - 1


def interleaved_job(a: Path, b: Path) -> dict[str, Any]:
    return {"pair": [{"artifact_path": str(a), "sha256": sha(a), "format": "onnx"},
                     {"artifact_path": str(b), "sha256": sha(b), "format": "onnx"}],
            "options": {}, "measurement": {"warmup_runs": 5, "min_time_s": 0.3},
            "block_size": 10, "repeats": 4}


def test_interleaved_identical_files_give_a_ratio_near_one(tmp_path: Path) -> None:
    a = build_matmul_chain(tmp_path / "a.onnx", size=128, layers=6)
    b = build_matmul_chain(tmp_path / "b.onnx", size=128, layers=6)
    result = run(interleaved_job(a, b))
    assert result["status"] == "ok", result["error"]
    assert 0.8 <= result["median_ratio"] <= 1.25
    assert len(result["repeat_median_ratios"]) == 4
    ratios = decode_samples(result["ratios_b_over_a"])
    assert ratios.size == result["ratio_stats"]["n"] >= 20
    assert result["a"]["stats"]["n"] == result["b"]["stats"]["n"]


def test_interleaved_sees_a_model_twice_as_heavy(tmp_path: Path) -> None:
    a = build_matmul_chain(tmp_path / "a.onnx", size=128, layers=6)
    b = build_matmul_chain(tmp_path / "b.onnx", size=128, layers=12)
    result = run(interleaved_job(a, b))
    assert result["status"] == "ok", result["error"]
    assert result["median_ratio"] > 1.3


def test_a_sequential_interleaved_job_stops_at_the_first_decided_look(tmp_path: Path) -> None:
    a = build_matmul_chain(tmp_path / "a.onnx", size=128, layers=6)
    b = build_matmul_chain(tmp_path / "b.onnx", size=128, layers=12)
    job = {**interleaved_job(a, b), "block_size": None,
           "sequential": {"limit": 0.05, "max_repeats": 24, "alpha": 0.05}}
    result = run(job)
    assert result["status"] == "ok", result["error"]
    looks = result["looks"]
    assert looks and looks[-1]["decision"] == "slower"
    assert all(look["decision"] == "continue" for look in looks[:-1])
    assert result["repeats"] == looks[-1]["repeats"] == len(result["repeat_median_ratios"])
    assert result["repeats"] < 24
    assert 1 <= result["block_size"] <= 10  # sized from the warm-up
    assert result["clock"] == "wall"  # the worker's default when the job names none


def test_a_cpu_clock_job_decides_on_cpu_time_and_keeps_the_wall_clock_ratios(
    tmp_path: Path
) -> None:
    a = build_matmul_chain(tmp_path / "a.onnx", size=128, layers=6)
    b = build_matmul_chain(tmp_path / "b.onnx", size=128, layers=12)
    job = {**interleaved_job(a, b), "clock": "cpu",
           "sequential": {"limit": 0.05, "max_repeats": 8, "alpha": 0.05}}
    result = run(job)
    assert result["status"] == "ok", result["error"]
    cpu, wall = result["repeat_cpu_ratios"], result["repeat_median_ratios"]
    assert result["clock"] == "cpu" and len(cpu) == len(wall) == result["repeats"]
    assert min(cpu) > 1.3 and min(wall) > 1.0
    assert result["looks"][-1]["ratio"] > 1.3


def test_fit_grain_sizes_blocks_to_the_model_and_stretches_repeats_of_slow_ones() -> None:
    from devtrack.bench.interleaved import MIN_PAIRS, PAIRS_PER_REPEAT, fit_grain

    assert fit_grain(0.1, 0.3) == (10, 0.3)  # fast: blocks capped at 10
    block, repeat_s = fit_grain(4.0, 0.3)
    assert block == int(300 / (PAIRS_PER_REPEAT * 4.0)) and repeat_s == 0.3
    block, repeat_s = fit_grain(200.0, 0.3)  # 0.2 s a pair: single inferences, longer repeat
    assert block == 1 and repeat_s == pytest.approx(MIN_PAIRS * 0.2)


def test_interleaved_rejects_a_changed_artifact(tmp_path: Path) -> None:
    a = build_matmul_chain(tmp_path / "a.onnx", size=16, layers=1)
    job = interleaved_job(a, a)
    job["pair"][1]["sha256"] = "f" * 64
    result = run(job)
    assert result["status"] == "failed" and "sha256 mismatch" in result["error"]


CTRL_C_SCRIPT = textwrap.dedent("""
    import sys
    from devtrack.bench.runner import run_job
    from devtrack.errors import Aborted

    job = {"artifact_path": sys.argv[1], "sha256": None, "format": "onnx",
           "measurement": {"min_time_s": 0.1, "max_time_s": 1}}
    started = []

    def progress(p):
        if not started:
            started.append(p.pid)
            print("child", p.pid, flush=True)

    try:
        run_job(job, threads=1, cpu_affinity=None, memory_limit_mb=None, timeout_s=60,
                progress=progress)
    except Aborted as exc:
        print("aborted", exc.exit_code, exc.result["status"], flush=True)
        sys.exit(exc.exit_code)
    print("finished", flush=True)
""")


def test_ctrl_c_kills_the_worker_and_raises_aborted(chain: Path, tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    env = dict(os.environ, DEVTRACK_TEST_HOOK="sleep")
    proc = subprocess.Popen([sys.executable, str(script), str(chain)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[0] == "child", proc.stderr.read() if proc.stderr else ""
    child = int(line[1])
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert out.strip() == "aborted 130 aborted"
    assert "Traceback" not in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_run_job_raises_aborted_in_process(chain: Path, hook: Any) -> None:
    hook("sleep")
    pids: list[int] = []

    def interrupt(p: Progress) -> None:
        pids.append(p.pid)
        if p.elapsed_s > 0.3:
            raise KeyboardInterrupt

    with pytest.raises(Aborted) as info:
        run(make_job(chain), progress=interrupt)
    assert info.value.exit_code == 130
    assert info.value.result["status"] == "aborted"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def _warnings_for(samples: np.ndarray) -> list[str]:
    from devtrack.bench.worker import _quality_warnings
    from devtrack.core.stats import StoppingRule, summarize

    stats = summarize(samples)
    q25, q75 = np.percentile(samples, [25, 75])
    result = {"warnings": [], "stats": stats.to_dict(), "phases": {"loop_s": 1.0}}
    _quality_warnings(result, stats.cv, float((q75 - q25) / stats.median),
                      stats.p99 / stats.median, stats.rel_ci_half_width,
                      StoppingRule(10, 0.1, 1.0, 0.5), "converged")
    return result["warnings"]


def test_a_few_stalls_are_a_heavy_tail_not_high_variance() -> None:
    samples = np.full(10_000, 0.010)
    samples[::50] = 4.0  # 2% scheduler stalls of 4 ms on a 10 µs model
    warnings = _warnings_for(samples + np.linspace(0, 1e-4, samples.size))
    assert any(w.startswith("heavy tail: p99 is") for w in warnings)
    assert not any(w.startswith("high variance") for w in warnings)


def test_a_spread_out_bulk_is_high_variance() -> None:
    samples = np.random.default_rng(0).uniform(1.0, 2.0, 5_000)
    warnings = _warnings_for(samples)
    assert any(w.startswith("high variance: CV") for w in warnings)
