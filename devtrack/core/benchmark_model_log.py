"""LiteRT/TFLite `benchmark_model` output read into plain figures (ms, MB) and op profiles.

Pure: text in, a :class:`BenchmarkLog` out, or a one-line :class:`LogFormatError`. It reads
what recent and older versions of the tool print, with or without ``INFO: ``, logcat
(``I tflite  : …``, ``12-05 10:00:00.123  1234  1234 I tflite  : …``, ``I/tflite ( 123): …``)
or glog prefixes, numbers such as ``1.24027e+06``:

- the regular runs' line ``count=50 first=… curr=… min=… max=… avg=… std=… [p5=… median=…
  p95=…]`` (the last ``count=`` line before the timings; the one before it is the warm-up);
- ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg):
  …`` or the older ``Average inference timings in us: Warmup: …, Init: …, Inference: …`` /
  ``no stats: …``;
- ``Memory footprint delta from the start of the tool (MB): init=… overall=…`` and
  ``Overall peak memory footprint (MB) via periodic monitoring: …``;
- the op-profiling tables of ``--enable_op_profiling`` (``Run Order`` per node and ``Summary by
  node type``) of the regular runs, with or without the ``[start]`` column.

Timings are microseconds in the log and milliseconds here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from devtrack.errors import LogFormatError

# Unambiguous (one way to match any digit run), so a long digit string fails in linear time.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_TEXT = re.compile(rf"^{_NUMBER}$")
MAX_LINE_CHARS = 2000  # longer lines are cut: benchmark_model's own are far shorter
_PREFIXES = (
    # logcat -v threadtime: "12-05 10:00:00.123  1234  1234 I tflite  : "
    re.compile(r"^\s*\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*?\s*:\s?"),
    # logcat -v brief / time: "I/tflite  ( 5395): ", optionally after a date and time
    re.compile(r"^\s*(?:\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}\.\d+\s+)?[VDIWEF]/[^(:]*\(\s*\d+\):\s?"),
    # logcat -v tag: "I tflite  : "
    re.compile(r"^\s*[VDIWEF]\s+[A-Za-z_][\w.-]*\s*:\s"),
    # glog, as TensorFlow 1.x printed it: "2017-11-27 08:56:45.691915: I path/file.cc:324] "
    re.compile(r"^\s*\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?: [IWEF] [^\]]*\]\s?"),
)
_LEVEL = re.compile(r"^\s*(?:INFO|VERBOSE|WARNING|ERROR|FATAL): ?")
_ERROR_LINE = re.compile(r"(?:^|\s)(?:ERROR|FATAL):|Segmentation fault|Fatal signal|Aborted"
                         r"|Benchmarking failed|Failed to|terminate called|CANNOT LINK"
                         r"|No such file", re.IGNORECASE)
_COUNT_LINE = re.compile(r"^\s*count=(\d+)\b(.*)$")
_TIMINGS = re.compile(r"^\s*(?:Average )?[Ii]nference timings in us:(.*)$")
_TIMING_ITEM = re.compile(rf"([A-Za-z][A-Za-z ()]{{0,40}}?):\s*({_NUMBER})")
_MEMORY = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*"
                     rf"init=({_NUMBER})\s+overall=({_NUMBER})")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({_NUMBER})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\):\s*({_NUMBER})")
_HEADER_CELL = re.compile(r"\[([^\]]+)\]")
_RUN_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs"
_OTHER_SECTION = re.compile(r"Profiling Info for .*:\s*$")
_NUMERIC_CELL = re.compile(rf"^(?:{_NUMBER})%?$")

RECENT, OLDER, OLDEST = "recent", "older", "oldest"  # which wording the timings line used


@dataclass(frozen=True)
class RunStats:
    """One ``count=`` line: the summary of a phase's inferences, in milliseconds."""

    count: int
    first_ms: float | None = None
    curr_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    avg_ms: float | None = None
    std_ms: float | None = None
    p5_ms: float | None = None
    median_ms: float | None = None
    p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first_ms": self.first_ms, "curr_ms": self.curr_ms,
                "min_ms": self.min_ms, "max_ms": self.max_ms, "avg_ms": self.avg_ms,
                "std_ms": self.std_ms, "p5_ms": self.p5_ms, "median_ms": self.median_ms,
                "p95_ms": self.p95_ms}


@dataclass(frozen=True)
class OpNode:
    """One row of the ``Run Order`` table: a node's time per inference (avg × times called)."""

    name: str  # the node's name without brackets, e.g. "MobilenetV1/Conv2d_0/Relu6"
    op: str  # the node type, e.g. "CONV_2D" or "Convolution (NHWC, QC8) IGEMM"
    index: int | None  # the node index after the name (``[…]:12``), when printed
    first_ms: float | None
    avg_ms: float  # per call
    times_called: int  # per inference
    ms: float  # per inference

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "index": self.index,
                "first_ms": self.first_ms, "avg_ms": self.avg_ms,
                "times_called": self.times_called, "ms": self.ms}


@dataclass(frozen=True)
class OpType:
    """One row of ``Summary by node type``: all nodes of a type, per inference."""

    op: str
    count: int  # nodes of this type
    ms: float  # their time per inference
    pct: float | None
    times_called: int

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "count": self.count, "ms": self.ms, "pct": self.pct,
                "times_called": self.times_called}


@dataclass(frozen=True)
class OpProfile:
    """The regular runs' op-profiling tables of ``--enable_op_profiling``."""

    nodes: tuple[OpNode, ...] = ()
    types: tuple[OpType, ...] = ()
    runs: int | None = None  # the table's own ``Timings (microseconds): count=N``

    def type_times(self) -> dict[str, float]:
        """ms per inference by node type: the summary table, else the nodes summed."""
        if self.types:
            return {t.op: t.ms for t in self.types}
        out: dict[str, float] = {}
        for node in self.nodes:
            out[node.op] = out.get(node.op, 0.0) + node.ms
        return out


@dataclass(frozen=True)
class BenchmarkLog:
    """What one benchmark_model run printed, in milliseconds and MB."""

    inference: RunStats  # the regular (measured) runs
    warmup: RunStats | None
    init_ms: float | None
    first_ms: float | None  # the first inference
    warmup_avg_ms: float | None
    inference_avg_ms: float | None
    wording: str  # RECENT | OLDER | OLDEST
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    peak_memory_mb: float | None = None
    model_size_mb: float | None = None
    op_profile: OpProfile | None = None
    notes: tuple[str, ...] = field(default=())
    params: tuple[tuple[str, str], ...] = ()  # the tool's "Name: [value]" lines, as printed

    def param(self, *names: str) -> str | None:
        """The first printed parameter among ``names`` (case and spacing ignored)."""
        wanted = {_key(n) for n in names}
        return next((v for k, v in self.params if _key(k) in wanted), None)

    @property
    def median_ms(self) -> float:
        """The median of the regular runs; the average where the version printed none."""
        value = self.inference.median_ms
        if value is None:
            value = self.inference.avg_ms if self.inference.avg_ms is not None \
                else self.inference_avg_ms
        assert value is not None  # parse_log refuses a log without either
        return value


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def strip_prefix(line: str) -> str:
    """The message of one log line without its logcat, glog and ``INFO:`` prefixes."""
    for pattern in _PREFIXES:
        match = pattern.match(line)
        if match:
            line = line[match.end():]
            break
    match = _LEVEL.match(line)
    return line[match.end():] if match else line


def _ms(us: str | None) -> float | None:
    if us is None:
        return None
    value = float(us)
    return value / 1000.0 if math.isfinite(value) else None


def _table_title(line: str) -> str | None:
    """``Run Order`` of ``===== Run Order =====``; None for any other line."""
    text = line.strip()
    if not (text.startswith("===") and text.endswith("===")):
        return None
    return text.strip("=").strip()


def _param(line: str) -> tuple[str, str] | None:
    """``("Num threads", "4")`` of ``Num threads: [4]``; None for any other line."""
    text = line.strip()
    key, sep, value = text.partition(": [")
    key = key.strip()
    if (not sep or not text.endswith("]") or not key or not (key[0].isalpha() or key[0] == "#")
            or any(c in key for c in "[]=:")):
        return None
    return key, value[:-1]


def _count_line(rest: str, count: int) -> RunStats:
    values = {}
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep and (_NUMBER_TEXT.match(value) or value.lstrip("-") in ("nan", "inf")):
            values[key] = value
    return RunStats(count, *(_ms(values.get(k)) for k in (
        "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")))


def _timings(items: str) -> tuple[dict[str, float], str]:
    found = {key.strip().lower(): float(value) for key, value in _TIMING_ITEM.findall(items)}
    if "first inference" in found or "inference (avg)" in found:
        wording = RECENT
    elif "no stats" in found:
        wording = OLDEST
    else:
        wording = OLDER
    out: dict[str, float] = {}
    for key, names in (("init", ("init",)), ("first", ("first inference",)),
                       ("warmup", ("warmup (avg)", "warmup")),
                       ("inference", ("inference (avg)", "inference", "no stats"))):
        for name in names:
            if name in found and math.isfinite(found[name]):
                out[key] = found[name] / 1000.0
                break
    return out, wording


def parse_log(text: str, source: str = "the log") -> BenchmarkLog:
    """Read one benchmark_model run's output. Raises LogFormatError naming what is missing
    (and the first error line the tool printed, when there is one)."""
    raw_lines = text.splitlines()
    raw_lines = [line[:MAX_LINE_CHARS] for line in raw_lines]
    lines = [strip_prefix(line.rstrip("\r")) for line in raw_lines]
    count_lines: list[tuple[int, RunStats]] = []
    timings_at: int | None = None
    timings: dict[str, float] = {}
    wording = RECENT
    memory: tuple[float, float] | None = None
    peak = size = None
    first_error: str | None = None
    params: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        match = _COUNT_LINE.match(line)
        if match:
            count_lines.append((i, _count_line(match.group(2), int(match.group(1)))))
            continue
        match = _TIMINGS.match(line)
        if match:
            timings_at = i
            timings, wording = _timings(match.group(1))
            continue
        if timings_at is None and (param := _param(line)) is not None:
            params.append(param)
        elif (m := _MEMORY.search(line)) is not None:
            memory = (float(m.group(1)), float(m.group(2)))
        elif (m := _PEAK.search(line)) is not None:
            peak = float(m.group(1))
        elif (m := _MODEL_SIZE.search(line)) is not None:
            size = float(m.group(1))
        elif first_error is None and line.strip() and _ERROR_LINE.search(raw_lines[i]):
            first_error = line.strip()
    if timings_at is None:
        why = f"; it printed: {first_error[:160]}" if first_error else ""
        if not any(line.strip() for line in lines):
            raise LogFormatError(f"{source} is empty: no benchmark_model output to read")
        raise LogFormatError(f"{source} is not a finished benchmark_model run: no 'Inference "
                             f"timings in us' line (crashed or truncated?){why}")
    before = [stats for at, stats in count_lines if at < timings_at]
    if not before:
        raise LogFormatError(f"{source}: no 'count=… avg=…' line of the regular runs before "
                             "the timings line: truncated or not benchmark_model output")
    inference = before[-1]
    warmup = before[-2] if len(before) > 1 else None
    if inference.count < 1 or (inference.median_ms is None and inference.avg_ms is None
                               and "inference" not in timings):
        raise LogFormatError(f"{source}: the regular runs' line has no count or average")
    notes = []
    if inference.median_ms is None:
        notes.append("this benchmark_model version prints no median: the average stands "
                     "in for it")
    return BenchmarkLog(
        inference=inference, warmup=warmup, init_ms=timings.get("init"),
        first_ms=timings.get("first"), warmup_avg_ms=timings.get("warmup"),
        inference_avg_ms=timings.get("inference"), wording=wording,
        memory_init_mb=memory[0] if memory else None,
        memory_overall_mb=memory[1] if memory else None,
        peak_memory_mb=peak, model_size_mb=size,
        op_profile=parse_op_tables(lines), notes=tuple(notes), params=tuple(params))


def parse_op_tables(lines: list[str]) -> OpProfile | None:
    """The regular runs' ``Run Order`` and ``Summary by node type`` tables (prefixes already
    stripped), or None when the log has none. Initialization tables are skipped."""
    section = "run"  # older versions print the tables with no section header
    nodes: list[OpNode] = []
    types: list[OpType] = []
    runs: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if _RUN_SECTION in line:
            section, nodes, types, runs = "run", [], [], None  # the last section wins
        elif _OTHER_SECTION.search(line):
            section = "other"
        kind = _table_title(line)
        if kind is not None and i + 1 < len(lines) and section == "run":
            header = _HEADER_CELL.findall(lines[i + 1])
            rows, i = _table_rows(lines, i + 2)
            if kind == "Run Order" and header:
                nodes = [n for n in (_node(r, header) for r in rows) if n is not None]
            elif kind == "Summary by node type" and header:
                types = [t for t in (_op_type(r, header) for r in rows) if t is not None]
            continue
        if section == "run" and (nodes or types) and line.lstrip().startswith("Timings"):
            match = re.search(r"count=(\d+)", line)
            runs = int(match.group(1)) if match else runs
        i += 1
    if not nodes and not types:
        return None
    return OpProfile(tuple(nodes), tuple(types), runs)


def _table_rows(lines: list[str], start: int) -> tuple[list[str], int]:
    rows = []
    i = start
    while i < len(lines) and lines[i].strip() and _table_title(lines[i]) is None:
        rows.append(lines[i])
        i += 1
    return rows, i


def _cells(row: str, numeric: int) -> tuple[str, list[str], str] | None:
    """(node type, the ``numeric`` number cells, the rest) of one table row."""
    row = row.strip()
    tokens = row.split("\t") if "\t" in row else re.split(r"\s{2,}", row)
    tokens = [t.strip() for t in tokens if t.strip()]
    # The node type may hold single spaces ("Convolution (NHWC, QC8) GEMM"); find the run of
    # ``numeric`` number cells that follows it.
    for start in range(1, len(tokens) - numeric + 1):
        window = tokens[start:start + numeric]
        if all(_NUMERIC_CELL.match(t) for t in window):
            return " ".join(tokens[:start]), window, " ".join(tokens[start + numeric:])
    return None


def _number(cell: str) -> float:
    return float(cell.rstrip("%"))


def _node(row: str, header: list[str]) -> OpNode | None:
    numeric = header[1:-1] if header[-1].lower() == "name" else header[1:]
    cells = _cells(row, len(numeric))
    if cells is None:
        return None
    op, values, rest = cells
    by_name = {h.lower(): _number(v) for h, v in zip(numeric, values, strict=True)}
    avg = by_name.get("avg ms")
    if avg is None:
        return None
    called = int(by_name.get("times called", 1) or 1)
    name, index = _node_name(rest)
    return OpNode(name, op, index, by_name.get("first"), avg, called, avg * called)


def _node_name(text: str) -> tuple[str, int | None]:
    match = re.match(r"^\[(.*)\]:(\d+)$", text) or re.match(r"^(.*?):(\d+)$", text)
    if match:
        return match.group(1), int(match.group(2))
    return text.strip("[]"), None


def _op_type(row: str, header: list[str]) -> OpType | None:
    numeric = header[1:]
    cells = _cells(row, len(numeric))
    if cells is None:
        return None
    op, values, _ = cells
    by_name = {h.lower(): _number(v) for h, v in zip(numeric, values, strict=True)}
    if "avg ms" not in by_name:
        return None
    return OpType(op, int(by_name.get("count", 0)), by_name["avg ms"], by_name.get("avg %"),
                  int(by_name.get("times called", 0)))
