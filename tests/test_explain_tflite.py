"""`explain` on TFLite releases from benchmark_model op profiles: given logs, a phone (a
stand-in adb), stored runs; and a structure-only explanation when none exists."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from devtrack.core.benchmark_model_log import OpNode
from devtrack.tflite_op_profiles import node_times
from tests import fake_adb
from tests.fake_adb import Phone
from tests.test_adb_bench import PHONE
from tests.test_cli_errors import assert_clean_error

DATA = Path(__file__).parent / "data" / "benchmark_model"
A_LOG, B_LOG = DATA / "recent_op_profile.log", DATA / "recent_op_profile_b.log"
LOGS_PROFILE = """
name = "pixel8-logs"
formats = ["tflite"]
[execution]
threads = 2
"""


@pytest.fixture(name="phone")
def _phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Phone:
    return fake_adb.start(tmp_path, monkeypatch, DATA / "recent_info.log")


@pytest.fixture
def tflite_ws(in_ws: Path, mlp_tflite: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> Path:
    from devtrack.builders.tflite_models import build_tflite_mlp

    other = build_tflite_mlp(tmp_path / "b.tflite", in_features=16, hidden=(8,), classes=4,
                             seed=5)
    (in_ws / "device_profiles" / "pixel8-logs.toml").write_text(LOGS_PROFILE)
    (in_ws / "device_profiles" / "pixel8.toml").write_text(PHONE)
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.0.0").exit_code == 0
    assert run_cli("register", other, "-m", "kws", "-v", "1.1.0").exit_code == 0
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "2.0.0").exit_code == 0
    return in_ws


def test_repeated_delegate_rows_get_distinct_names() -> None:
    rows = [OpNode("Delegate/IGEMM", "IGEMM", 0, None, 1.0, 1, 1.0),
            OpNode("tfl.quantize", "QUANTIZE", 1, None, 0.1, 1, 0.1),
            OpNode("Delegate/IGEMM", "IGEMM", 3, None, 2.0, 1, 2.0)]
    assert [n.name for n in node_times(rows)] == ["Delegate/IGEMM", "tfl.quantize",
                                                  "Delegate/IGEMM #2"]


def _check_explanation(data: dict) -> None:
    assert data["a_ms"] == pytest.approx(15.29) and data["b_ms"] == pytest.approx(20.046)
    top = data["nodes"][0]
    assert top["status"] == "added" and top["op"] == "Convolution (NHWC, QC8) IGEMM"
    assert top["b_ms"] == pytest.approx(4.104)
    fc = next(n for n in data["nodes"] if n["op"] == "Fully Connected (NC, QS8) GEMM")
    assert fc["status"] in ("same", "changed") and fc["delta_ms"] == pytest.approx(0.501)
    assert "IGEMM" in data["headline"]


def test_explain_from_two_logs(tflite_ws: Path, run_cli) -> None:
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8-logs",
                     "--op-log", f"A={A_LOG}", "--op-log", f"b={B_LOG}", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert "given logs" in data["source"] and "indicative" in data["source"]
    _check_explanation(data)
    text = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8-logs",
                   "--op-log", f"A={A_LOG}", "--op-log", f"B={B_LOG}")
    assert text.exit_code == 0 and "added" in text.out


@pytest.mark.parametrize(("args", "needles"), [
    (["--op-log", f"A={A_LOG}"], ["needs a log for both", "--op-log B=LOG"]),
    (["--op-log", f"C={A_LOG}", "--op-log", f"B={B_LOG}"], ["expected A=LOG or B=LOG"]),
    (["--op-log", f"A={A_LOG}", "--op-log", f"A={B_LOG}"], ["given twice"]),
    (["--op-log", f"A={DATA / 'recent_info.log'}", "--op-log", f"B={B_LOG}"],
     ["no op-profiling tables", "--enable_op_profiling=true"]),
    (["--op-log", f"A={DATA / 'crashed_allocate.log'}", "--op-log", f"B={B_LOG}"],
     ["not a finished benchmark_model run"]),
    (["--op-log", "A=/no/such.log", "--op-log", f"B={B_LOG}"], ["no such log file"]),
])
def test_bad_op_logs_are_one_line_exit_2(tflite_ws: Path, run_cli, unchanged, args: list[str],
                                         needles: list[str]) -> None:
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8-logs", *args)
    assert_clean_error(result, *needles)
    unchanged()


def test_op_logs_for_an_onnx_release_are_refused(tflite_ws: Path, run_cli) -> None:
    result = run_cli("explain", "kws@1.0.0", "kws@2.0.0", "-p", "pixel8-logs",
                     "--op-log", f"A={A_LOG}", "--op-log", f"B={B_LOG}")
    assert_clean_error(result, "kws@2.0.0 is onnx", "tflite releases only")


def test_without_a_per_op_source_it_says_so_and_explains_the_structure(
        tflite_ws: Path, run_cli) -> None:
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8-logs", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["source"] is None and data["nodes"] == []
    assert "no per-operator times" in data["note"] and "--op-log A=LOG" in data["note"]


def test_explain_from_the_stored_op_profiles_of_imported_logs(tflite_ws: Path,
                                                              run_cli) -> None:
    for ref, log in (("kws@1.0.0", A_LOG), ("kws@1.1.0", B_LOG)):
        imported = run_cli("results", "import", "--format", "benchmark_model", log,
                           "--release", ref, "-p", "pixel8-logs")
        assert imported.exit_code == 0, imported.err
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8-logs", "--json")
    data = json.loads(result.out)
    assert "stored with the runs that count" in data["source"]
    _check_explanation(data)


def test_explain_on_a_phone_profiles_both_in_alternated_whole_runs(
        tflite_ws: Path, run_cli, phone: Phone, mlp_tflite: Path, tmp_path: Path) -> None:
    other = tmp_path / "b.tflite"
    phone.configure(outputs={hashlib.sha256(mlp_tflite.read_bytes()).hexdigest(): str(A_LOG),
                             hashlib.sha256(other.read_bytes()).hexdigest(): str(B_LOG)})
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert "adb://R58M123ABC" in data["source"] and "A B B A" in data["source"]
    _check_explanation(data)
    commands = phone.benchmark_commands()
    assert len(commands) == 4 and all("--enable_op_profiling=true" in c for c in commands)
    graphs = [c.split("--graph=")[1].split()[0] for c in commands]
    assert graphs[0] == graphs[3] and graphs[1] == graphs[2] and graphs[0] != graphs[1]


def test_explain_on_a_phone_without_benchmark_model_exits_1_naming_it(
        tflite_ws: Path, run_cli, phone: Phone) -> None:
    phone.configure(binary=False)
    result = run_cli("explain", "kws@1.0.0", "kws@1.1.0", "-p", "pixel8")
    assert result.exit_code == 1 and "Traceback" not in result.err
    assert "benchmark_model is missing" in result.err
