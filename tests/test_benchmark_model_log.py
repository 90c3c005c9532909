"""The benchmark_model log parser on real-shaped outputs of recent and older versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtrack.core.benchmark_model_log import OLDER, OLDEST, RECENT, parse_log, strip_prefix
from devtrack.errors import LogFormatError, UsageError

DATA = Path(__file__).parent / "data" / "benchmark_model"


def _log(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_recent_output_with_info_prefixes_in_milliseconds() -> None:
    log = parse_log(_log("recent_info.log"))
    s = log.inference
    assert s.count == 50
    assert s.first_ms == pytest.approx(1249.964)
    assert s.curr_ms == pytest.approx(1240.143)
    assert s.min_ms == pytest.approx(1238.588)
    assert s.max_ms == pytest.approx(1252.566)
    assert s.avg_ms == pytest.approx(1240.27)  # 1.24027e+06 us
    assert s.std_ms == pytest.approx(2.565)
    assert s.p5_ms == pytest.approx(1238.753)
    assert s.median_ms == pytest.approx(1239.807)
    assert s.p95_ms == pytest.approx(1247.415)
    assert log.median_ms == pytest.approx(1239.807)
    assert log.warmup is not None and log.warmup.count == 1
    assert log.warmup.curr_ms == pytest.approx(1357.602)
    assert log.init_ms == pytest.approx(5.579)
    assert log.first_ms == pytest.approx(1357.602)
    assert log.warmup_avg_ms == pytest.approx(1357.6)
    assert log.inference_avg_ms == pytest.approx(1240.27)
    assert (log.memory_init_mb, log.memory_overall_mb) == (pytest.approx(6.36328),
                                                           pytest.approx(109.832))
    assert log.peak_memory_mb == pytest.approx(113.441)
    assert log.model_size_mb == pytest.approx(13.3782)
    assert log.wording == RECENT
    assert log.op_profile is None
    assert log.notes == ()


@pytest.mark.parametrize(("name", "count", "median", "init", "overall", "peak"), [
    ("logcat_threadtime.log", 25, 141.253, 92.318, 72.9961, None),
    ("logcat_brief.log", 50, 2717.94, 458.883, 337.0, None),
    ("logcat_tag.log", 1061, None, 3.337, None, 93.2383),
])
def test_logcat_prefixes(name: str, count: int, median: float | None, init: float,
                         overall: float | None, peak: float | None) -> None:
    log = parse_log(_log(name))
    assert log.inference.count == count
    assert log.inference.median_ms == (pytest.approx(median) if median else None)
    assert log.init_ms == pytest.approx(init)
    assert log.memory_overall_mb == (pytest.approx(overall) if overall else None)
    assert log.peak_memory_mb == (pytest.approx(peak) if peak else None)
    assert log.warmup is not None and log.warmup.count in (1, 3, 9)


def test_version_without_percentiles_uses_the_average_with_a_note() -> None:
    log = parse_log(_log("older_no_percentiles.log"))
    assert log.inference.count == 50
    assert log.inference.p5_ms is None and log.inference.median_ms is None
    assert log.median_ms == pytest.approx(971.535)
    assert log.memory_overall_mb == pytest.approx(109.848)
    assert any("no median" in note for note in log.notes)


def test_oldest_wording_no_stats() -> None:
    log = parse_log(_log("oldest_no_stats.log"))
    assert log.wording == OLDEST
    assert log.inference_avg_ms == pytest.approx(747.733)
    assert log.warmup_avg_ms == pytest.approx(751.932)
    assert log.init_ms == pytest.approx(21.039)
    assert log.first_ms is None
    assert log.inference.std_ms == pytest.approx(0.293)


def test_older_average_wording_with_tab_separated_op_tables() -> None:
    log = parse_log(_log("older_op_profile_tabs.log"))
    assert log.wording == OLDER
    assert log.inference_avg_ms == pytest.approx(79.7609)
    assert log.inference.count == 50  # the regular runs, not the table's Timings line
    prof = log.op_profile
    assert prof is not None and prof.runs == 50
    assert [n.op for n in prof.nodes] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
                                          "AVERAGE_POOL_2D", "CONV_2D", "RESHAPE", "SOFTMAX"]
    first = prof.nodes[0]
    assert first.name == "MobilenetV1/MobilenetV1/Conv2d_0/Relu6" and first.index is None
    assert first.ms == pytest.approx(7.237) and first.first_ms == pytest.approx(5.567)
    assert prof.type_times()["CONV_2D"] == pytest.approx(76.479)
    assert {t.op: t.count for t in prof.types}["CONV_2D"] == 3


def test_recent_op_tables_skip_initialization_and_multiply_times_called() -> None:
    log = parse_log(_log("recent_op_profile.log"))
    prof = log.op_profile
    assert prof is not None and prof.runs == 66
    assert len(prof.nodes) == 8  # not ModifyGraphWithDelegate / AllocateTensors of init
    assert "AllocateTensors" not in {n.op for n in prof.nodes}
    dw = prof.nodes[2]
    assert dw.op == "Convolution (NHWC, QC8) DWConv"
    assert dw.name == "Delegate/Convolution (NHWC, QC8) DWConv"
    assert dw.times_called == 13 and dw.ms == pytest.approx(0.051 * 13)
    assert dw.index == 1
    assert (prof.nodes[-1].name, prof.nodes[-1].index) == ("StatefulPartitionedCall:0", 70)
    assert (prof.nodes[0].name, prof.nodes[0].index) == ("tfl.quantize", 0)
    assert prof.type_times()["Convolution (NHWC, QC8) IGEMM"] == pytest.approx(12.61)
    # the nodes add up to the regular runs' time per inference (profiled), as the tool says
    assert sum(n.ms for n in prof.nodes) == pytest.approx(15.31, rel=0.01)
    assert log.peak_memory_mb == pytest.approx(18.5664)


THREADTIME = "12-05 10:00:00.123  1234  1234 I tflite  : "


@pytest.mark.parametrize("prefix", ["", "INFO: ", THREADTIME, "I tflite  : ",
                                    "07-08 15:34:26.202 I/tflite  ( 5395): ",
                                    "2017-11-27 08:56:45.691915: I tensorflow/lite/tools/"
                                    "benchmark/benchmark_model.cc:324] "])
def test_every_prefix_gives_the_same_figures_and_op_tables(prefix: str) -> None:
    text = _log("recent_op_profile.log")
    bare = "\n".join(strip_prefix(line) for line in text.splitlines())
    prefixed = "\n".join(prefix + line for line in bare.splitlines())
    assert parse_log(prefixed) == parse_log(text)


def test_strip_prefix_keeps_messages_with_colons() -> None:
    assert strip_prefix("INFO: Graph: [a.tflite]") == "Graph: [a.tflite]"
    assert strip_prefix(THREADTIME + "Num threads: [4]") == "Num threads: [4]"
    assert strip_prefix("Num threads: [4]") == "Num threads: [4]"


@pytest.mark.parametrize(("name", "words"), [
    ("crashed_allocate.log", ["not a finished benchmark_model run", "STABLEHLO_COMPOSITE"]),
    ("truncated_after_warmup.log", ["not a finished", "truncated"]),
    ("segfault_logcat.log", ["not a finished", "Fatal signal 11"]),
    ("timings_without_count.log", ["no 'count=", "truncated"]),
    ("not_benchmark_model.log", ["not a finished benchmark_model run"]),
    ("empty.log", ["is empty"]),
])
def test_unreadable_logs_are_one_line_usage_errors(name: str, words: list[str]) -> None:
    with pytest.raises(LogFormatError) as info:
        parse_log(_log(name), source=name)
    message = str(info.value)
    assert isinstance(info.value, UsageError)
    assert "\n" not in message and message.startswith(name)
    for word in words:
        assert word in message


def test_a_log_cut_inside_the_op_tables_still_reads_the_figures() -> None:
    text = _log("recent_op_profile.log")
    cut = text[: text.index("Fully Connected (NC, QS8) GEMM")]
    log = parse_log(cut)
    assert log.inference.count == 66
    assert log.op_profile is not None and len(log.op_profile.nodes) == 6


def test_parameters_the_tool_printed_are_kept() -> None:
    log = parse_log(_log("recent_info.log"))
    assert log.param("Num threads") == "4"
    assert log.param("use xnnpack") == "1"
    assert log.param("Graph") == "/data/local/tmp/devtrack/3f1c.tflite"
    older = parse_log(_log("older_no_percentiles.log"))
    assert older.param("Use nnapi") == "0" and older.param("use xnnpack") is None


def test_hostile_long_lines_are_refused_without_hanging(tmp_path: Path) -> None:
    """Lines built to make a backtracking pattern quadratic (megabytes of digits, word
    characters, '=' signs) are cut and read in linear time: bounded here by a subprocess
    timeout, not a wall-clock assertion."""
    import subprocess
    import sys

    crafted = tmp_path / "hostile.log"
    crafted.write_text("\n".join([
        "count=5 " + "a" * 2_000_000,
        "count=5 first=" + "9" * 2_000_000 + "x",
        "=" * 2_000_000,
        "Num threads" + " " * 2_000_000 + ": [",
        "Inference timings in us: " + "Init" * 500_000,
    ]) + "\n")
    code = ("import sys; from devtrack.core.benchmark_model_log import parse_log\n"
            "from devtrack.errors import LogFormatError\n"
            "try:\n    parse_log(open(sys.argv[1]).read())\nexcept LogFormatError as e:\n"
            "    print('refused:', str(e)[:80])\n")
    done = subprocess.run([sys.executable, "-c", code, str(crafted)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout
