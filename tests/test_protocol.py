"""The worker protocol: its version checked on both sides, one sample encoding, typed jobs."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devtrack.bench import protocol
from devtrack.bench.protocol import (
    PROTOCOL_KEY,
    PROTOCOL_VERSION,
    MeasureJob,
    MeasureWindow,
    RunResult,
    check_version,
    decode_samples,
    encode_predictions,
    encode_samples,
    predictions_from_blob,
    samples_from_blob,
    samples_to_blob,
    text_to_blob,
)
from devtrack.bench.runner import run_job
from devtrack.errors import ProtocolMismatchError
from tests.test_worker import FAST, make_job

DEVTRACK = Path(__file__).resolve().parent.parent / "devtrack"
# A run stored by devtrack before this module existed: float32 LE of [1.5, 2.25, 0.001].
OLD_BLOB = bytes.fromhex("0000c03f000010406f12833a")


def run_worker(tmp_path: Path, job: dict[str, object]) -> dict[str, object]:
    """The real worker process on ``job``; its result file."""
    job_path, result_path = tmp_path / "job.json", tmp_path / "result.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "devtrack.bench.worker", str(job_path),
                           str(result_path)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(result_path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("version", [PROTOCOL_VERSION + 1, 0, None])
def test_the_worker_refuses_a_job_of_another_version(tmp_path: Path, mlp_onnx: Path,
                                                     version: int | None) -> None:
    job = make_job(mlp_onnx)
    if version is None:
        job.pop(PROTOCOL_KEY, None)
    else:
        job[PROTOCOL_KEY] = version
    result = run_worker(tmp_path, job)
    assert result["status"] == "failed" and result["samples_ms"] is None
    error = str(result["error"])
    assert error.startswith("worker refused the job: ") and "\n" not in error
    assert f"version {PROTOCOL_VERSION}" in error
    if version is not None:
        assert f"version {version}" in error
    assert result[PROTOCOL_KEY] == PROTOCOL_VERSION  # the refusal says which version it is


def test_the_same_job_of_this_version_measures(tmp_path: Path, mlp_onnx: Path) -> None:
    result = run_worker(tmp_path, {**make_job(mlp_onnx), PROTOCOL_KEY: PROTOCOL_VERSION})
    assert result["status"] == "ok", result["error"]
    assert result[PROTOCOL_KEY] == PROTOCOL_VERSION
    assert decode_samples(str(result["samples_ms"])).size == result["stats"]["n"]  # type: ignore[index]


def test_run_job_reports_the_refusal_as_a_failed_run(mlp_onnx: Path) -> None:
    result = run_job({**make_job(mlp_onnx), PROTOCOL_KEY: 99}, threads=1, cpu_affinity=None,
                     memory_limit_mb=None, timeout_s=60)
    assert result["status"] == "failed"
    assert "worker protocol version 99" in result["error"]
    assert result["isolation"]["returncode"] == 0


def test_the_parent_refuses_a_result_of_another_version(tmp_path: Path) -> None:
    from devtrack.bench.runner import _read_result

    path = tmp_path / "result.json"
    path.write_text(json.dumps({PROTOCOL_KEY: 7, "status": "ok", "samples_ms": None}))
    refused = _read_result(path)
    assert refused["status"] == "failed"
    assert "worker's result is worker protocol version 7" in refused["error"]
    path.write_text(json.dumps({"status": "failed", "error": "boom"}))  # an older worker
    refused = _read_result(path)
    assert "carries no protocol version" in refused["error"]
    assert refused["error"].endswith("(the worker said: boom)")


def test_check_version_raises_one_line() -> None:
    check_version({PROTOCOL_KEY: PROTOCOL_VERSION}, "job")
    with pytest.raises(ProtocolMismatchError, match=r"^the job is worker protocol version 2;"):
        check_version({PROTOCOL_KEY: 2}, "job")


def test_stored_blobs_are_unchanged_and_old_runs_read() -> None:
    values = np.array([1.5, 2.25, 1e-3], dtype=np.float32)
    assert samples_to_blob(values) == OLD_BLOB  # what every earlier devtrack stored
    np.testing.assert_array_equal(samples_from_blob(OLD_BLOB), values.astype(np.float64))
    assert samples_from_blob(OLD_BLOB).dtype == np.float64
    assert samples_from_blob(None).size == 0 and samples_from_blob(b"").size == 0
    text = encode_samples(values)
    assert text == base64.b64encode(OLD_BLOB).decode("ascii") and len(text) == 16
    assert text_to_blob(text) == OLD_BLOB
    np.testing.assert_array_equal(decode_samples(text), values)
    classes = np.array([3, -1, 0, 9])
    blob = text_to_blob(encode_predictions(classes))
    assert blob == classes.astype("<i4").tobytes()
    assert predictions_from_blob(blob).tolist() == [3, -1, 0, 9]


def test_text_that_is_not_base64_is_refused() -> None:
    for bad in ("not base64!", 12):
        with pytest.raises(ValueError, match="not base64"):
            text_to_blob(bad)  # type: ignore[arg-type]


def test_one_module_owns_the_sample_encoding() -> None:
    """No module but bench/protocol.py encodes or decodes samples, ratios or predictions."""
    pattern = re.compile(r"\bbase64\b|frombuffer|['\"]<[fi][48]['\"]|tobytes\(")
    offenders = []
    for path in sorted(DEVTRACK.rglob("*.py")):
        if path.name == "protocol.py" and path.parent.name == "bench":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "a blob is not base64 text" not in code:
                offenders.append(f"{path.relative_to(DEVTRACK)}:{number}: {line.strip()}")
    assert offenders == []


def test_a_job_round_trips_and_keeps_todays_keys() -> None:
    job = MeasureJob(artifact_path="/a/m.onnx", sha256="ab" * 32, format="onnx",
                     options={"threads": 2}, measurement=MeasureWindow(min_runs=7,
                                                                       cooldown_s=0.5),
                     input_specs=[{"name": "x", "shape": [1, 4], "dtype": "float32"}])
    data = job.to_dict()
    assert data[PROTOCOL_KEY] == PROTOCOL_VERSION
    assert set(data) == {PROTOCOL_KEY, "artifact_path", "sha256", "format", "input_specs",
                         "fills", "options", "measurement", "seed", "op_profile"}
    assert data["measurement"]["min_runs"] == 7 and data["measurement"]["cooldown_s"] == 0.5
    assert MeasureJob.from_dict(json.loads(json.dumps(data))) == job
    with pytest.raises(ProtocolMismatchError):
        MeasureJob.from_dict({**data, PROTOCOL_KEY: 3})
    with pytest.raises(ValueError, match=r"job\.artifact_path"):
        MeasureJob.from_dict({**data, "artifact_path": None})


def test_a_result_round_trips_with_keys_it_does_not_name() -> None:
    raw = {PROTOCOL_KEY: PROTOCOL_VERSION, "status": "ok", "error": None, "mode": "single",
           "samples_ms": encode_samples([1.0, 2.0]), "stats": {"n": 2}, "warnings": ["w"],
           "runtime_options": {"threads": 1}}
    result = RunResult.from_dict(raw)
    assert result.status == "ok" and result.stats == {"n": 2}
    assert result.extra == {"mode": "single", "runtime_options": {"threads": 1}}
    assert result.samples_blob == samples_to_blob([1.0, 2.0])
    assert {k: v for k, v in result.to_dict().items() if v not in (None, {}, [])} == {
        k: v for k, v in raw.items() if v is not None}


def test_build_job_sends_a_typed_job_with_the_profile_cooldown(tmp_path: Path,
                                                               mlp_onnx: Path) -> None:
    from dataclasses import replace

    from devtrack.benchmarking import BenchOverrides, build_job, plan
    from devtrack.profiles import load_profile
    from devtrack.registry import RegisterRequest, get_release, register_release
    from devtrack.workspace import init_workspace

    ws, _ = init_workspace(tmp_path / "ws")
    with ws:
        register_release(ws, RegisterRequest(mlp_onnx, "mlp", "1.0"), cwd=tmp_path)
        release = get_release(ws, "mlp@1.0")
        profile = load_profile("ci-host", ws.root)
        profile = replace(profile, measurement=replace(profile.measurement, cooldown_s=0.25))
        [m], _ = plan([release], [profile], BenchOverrides())
        job = build_job(ws, m, op_profile=False)
    typed = MeasureJob.from_dict(job)
    assert typed.measurement.cooldown_s == 0.25
    assert typed.measurement.max_time_s == profile.measurement.max_time_s
    assert typed.sha256 == release.sha256 and "evaluation" not in job


def test_fast_settings_fit_the_window() -> None:
    assert MeasureWindow.from_dict(FAST).min_time_s == FAST["min_time_s"]


def test_protocol_imports_nothing_of_devtrack_but_errors() -> None:
    code = ("import sys; import devtrack.bench.protocol; "
            "print(sorted(m for m in sys.modules if m.startswith(('devtrack', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == str(sorted(["devtrack", "devtrack.bench", "devtrack.bench.protocol",
                                      "devtrack.errors"]))
    assert protocol.__doc__ and protocol.__doc__.splitlines()[0].endswith(".")
