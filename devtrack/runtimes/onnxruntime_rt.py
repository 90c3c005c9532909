"""onnxruntime behind the RuntimeSession protocol: CPU provider, threads, per-op profiling."""

from __future__ import annotations

import bisect
import functools
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from devtrack.core.summary import TensorInfo
from devtrack.errors import InvalidModelError, RuntimeUnavailableError
from devtrack.runtimes import RuntimeOptions

RUNTIME_NAME = "onnxruntime"
PROVIDER = "CPUExecutionProvider"
TOP_OPS = 15

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_EXEC_MODES = {
    "sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
    "parallel": ort.ExecutionMode.ORT_PARALLEL,
}
_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
    "tensor(uint16)": "uint16", "tensor(int32)": "int32", "tensor(uint32)": "uint32",
    "tensor(int64)": "int64", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
}
# How onnxruntime words "no kernel for this op", across versions and load stages.
_MISSING_OP_PATTERNS = (
    re.compile(r"(?P<domain>[\w.]+):(?P<op>\w+)\(-?\d+\) is not a registered function/op"),
    re.compile(r"No Op registered for (?P<op>\w+) with domain_version of \d+"),
    re.compile(r"Could not find an implementation for (?P<op>\w+)\("),
    re.compile(r"Unrecognized attribute: .*? for operator (?P<op>\w+)"),
)


def load_runtime() -> tuple[str, str]:
    """The runtime's name and version (importing this module imported onnxruntime)."""
    return RUNTIME_NAME, ort.__version__


def _dtype(ort_type: str) -> str:
    return _DTYPES.get(ort_type, ort_type.removeprefix("tensor(").removesuffix(")"))


def _tensor_info(arg: Any) -> TensorInfo:
    shape = arg.shape
    dims = None if shape is None else [d if isinstance(d, (int, str)) else None for d in shape]
    return TensorInfo(arg.name, dims, _dtype(arg.type))


def missing_op(message: str) -> str | None:
    """The op named in an onnxruntime "no such op" error (``domain:Op`` when given), or None."""
    for pattern in _MISSING_OP_PATTERNS:
        match = pattern.search(message)
        if match:
            domain = match.groupdict().get("domain")
            return f"{domain}:{match['op']}" if domain else match["op"]
    return None


def _load_error(path: Path, exc: Exception) -> Exception:
    text = str(exc)
    op = missing_op(text)
    if op is not None:
        return RuntimeUnavailableError(
            f"onnxruntime {ort.__version__} cannot run {path.name}: it has no kernel for op "
            f"{op} (a custom op? register its library or export the model without it)")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text:
        return InvalidModelError(f"{path}: not a valid ONNX model ({first})")
    return RuntimeUnavailableError(f"onnxruntime {ort.__version__} could not load "
                                   f"{path.name}: {first}")


def summarize_profile(events: list[dict[str, Any]], top: int = TOP_OPS) -> list[dict[str, Any]]:
    """Aggregate onnxruntime profile "Node" kernel events by op type, slowest first.

    Each item is ``{op, calls, total_ms, pct}``; ``pct`` is the share of all kernel time.
    """
    calls: dict[str, int] = defaultdict(int)
    total_us: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        op = str(event.get("args", {}).get("op_name") or event["name"])
        calls[op] += 1
        total_us[op] += float(event.get("dur", 0))
    grand = sum(total_us.values()) or 1.0
    ranked = sorted(total_us, key=lambda op: total_us[op], reverse=True)[:top]
    return [{"op": op, "calls": calls[op], "total_ms": round(total_us[op] / 1000.0, 4),
             "pct": round(100.0 * total_us[op] / grand, 2)} for op in ranked]


def _signature(entry: Any) -> str:
    """``{"float": [1, 64]}`` (one input in a profile event) as ``float[1,64]``."""
    if isinstance(entry, dict) and len(entry) == 1:
        ((dtype, dims),) = entry.items()
        return f"{dtype}[{','.join(str(d) for d in dims)}]"
    return str(entry)


def node_samples(events: list[dict[str, Any]], skip_runs: int = 0) -> list[dict[str, Any]]:
    """Per node, in execution order: ``{name, op, inputs, samples_us}``, one sample per run.

    Kernel events of the first ``skip_runs`` runs (``model_run`` events; the warm-up) are left
    out. A node run several times in one inference (a loop body) sums within that run.
    """
    runs = sorted(float(e["ts"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    if skip_runs >= len(runs):
        skip_runs = 0
    cutoff = runs[skip_runs] if runs else float("-inf")
    bounds = runs[skip_runs:]
    nodes: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: float(e.get("ts", 0))):
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        ts = float(event.get("ts", 0))
        if ts < cutoff:
            continue
        run = max(0, bisect.bisect_right(bounds, ts) - 1)
        args = event.get("args", {})
        node = nodes.setdefault(name.removesuffix("_kernel_time"), {
            "op": str(args.get("op_name") or "?"),
            "inputs": [_signature(x) for x in args.get("input_type_shape", [])],
            "by_run": defaultdict(float)})
        node["by_run"][run] += float(event.get("dur", 0))
    return [{"name": name, "op": n["op"], "inputs": n["inputs"],
             "samples_us": [n["by_run"].get(i, 0.0) for i in range(len(bounds))]}
            for name, n in nodes.items()]


class OrtSession:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with devtrack's options."""

    runtime_name = RUNTIME_NAME

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        self.runtime_version: str = ort.__version__
        self.path = path
        self.options = options
        self._sess = self._create(self._session_options())
        self.inputs = [_tensor_info(a) for a in self._sess.get_inputs()]
        self.outputs = [_tensor_info(a) for a in self._sess.get_outputs()]
        self._measured = self._sess
        self._profile_dir: str | None = None

    def _session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = _OPT_LEVELS[self.options.ort_graph_optimization_level]
        so.execution_mode = _EXEC_MODES[self.options.ort_execution_mode]
        so.log_severity_level = 3  # errors only: warnings would land in the worker's stderr
        if not self.options.ort_allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _create(self, so: ort.SessionOptions) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(os.fspath(self.path), sess_options=so,
                                        providers=[PROVIDER])
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise _load_error(self.path, exc) from None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, feeds)

    def bind(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        return functools.partial(self._sess.run, None, feeds)

    def start_op_profile(self) -> bool:
        """Route ``run`` to a second session with profiling on; the measured one stays clean."""
        so = self._session_options()
        self._profile_dir = tempfile.mkdtemp(prefix="devtrack-ortprof-")
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(self._profile_dir, "ort")
        self._sess = self._create(so)
        return True

    def end_op_profile(self) -> list[dict[str, Any]] | None:
        events = self._end_profiling()
        return None if events is None else summarize_profile(events)

    def end_node_profile(self, skip_runs: int = 0) -> list[dict[str, Any]] | None:
        """Per-node samples of the profiled runs (see :func:`node_samples`)."""
        events = self._end_profiling()
        return None if events is None else node_samples(events, skip_runs)

    def _end_profiling(self) -> list[dict[str, Any]] | None:
        if self._sess is self._measured or self._profile_dir is None:
            return None
        try:
            profile_path = self._sess.end_profiling()
            with open(profile_path, encoding="utf-8") as fh:
                events = json.load(fh)
        finally:
            self._sess = self._measured
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None
        return list(events)
