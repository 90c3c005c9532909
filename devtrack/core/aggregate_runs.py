"""Runs that hold only aggregates (benchmark_model): their result, how to tell one, what they allow.

LiteRT's ``benchmark_model`` prints a summary (count, min, max, avg, std, p5, median, p95),
never the samples. Such a run is stored in the ordinary runs table with no samples, its
``stop_reason`` set to :data:`AGGREGATES_STOP_REASON` and the log's own figures under
``details.source``. Without samples there is no CI of the median and no rank test, so a
comparison involving one reports both medians side by side and refuses a statistical verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtrack.core.benchmark_model_log import BenchmarkLog

AGGREGATES_STOP_REASON = "benchmark_model"  # runs.stop_reason of a run with only aggregates
TOOL = "benchmark_model"
RUNTIME = "LiteRT benchmark_model"
MEMORY_METHOD = ("benchmark_model: peak footprint via periodic monitoring "
                 "(--report_peak_memory_footprint); load delta = its init memory delta")
NO_SAMPLES = "only aggregates (benchmark_model): no samples, so no CI of the median"


def field_of(run: Any, key: str) -> Any:
    """A run's field, whether the run is a row (a mapping) or a typed record."""
    if isinstance(run, Mapping):
        return run.get(key)
    return getattr(run, key, None)


def is_aggregates_only(run: Any) -> bool:
    """Whether a stored run (a row, a run dict or a ``records.Run``) holds only
    benchmark_model's aggregates."""
    return run is not None and field_of(run, "stop_reason") == AGGREGATES_STOP_REASON


def budget_latency_ms(run: Any) -> float | None:
    """The figure ``latency_p90_ms`` is judged on: p90, or for a run holding only aggregates
    (benchmark_model prints no p90) its p95, an upper bound (p90 <= p95)."""
    p90 = field_of(run, "p90_ms")
    if p90 is None and is_aggregates_only(run):
        return field_of(run, "p95_ms")
    return p90


def op_profile_of(log: BenchmarkLog) -> dict[str, Any] | None:
    """The run's ``op_profile`` in the shape ONNX runs use (``ops`` with ``total_ms`` per
    ``runs``; here per inference, ``runs`` 1) plus benchmark_model's per-node rows."""
    prof = log.op_profile
    if prof is None:
        return None
    calls = {t.op: t.times_called for t in prof.types}
    pct = {t.op: t.pct for t in prof.types}
    ops = [{"op": op, "calls": calls.get(op), "total_ms": round(ms, 6), "pct": pct.get(op)}
           for op, ms in sorted(prof.type_times().items(), key=lambda kv: -kv[1])]
    return {"runs": 1, "per": "inference", "source": TOOL, "profiled_runs": prof.runs,
            "ops": ops, "nodes": [n.to_dict() for n in prof.nodes]}


def result_from_log(log: BenchmarkLog, origin: dict[str, Any],
                    warnings: list[str] | None = None) -> dict[str, Any]:
    """A result dict as ``benchmarking.store_run`` takes from a worker, from a parsed log.

    ``origin`` says where the log came from (``{"origin": "import", "log_sha256": …}`` or the
    adb device); it is stored under ``details.source`` with the log's own figures.
    """
    s = log.inference
    mean = s.avg_ms if s.avg_ms is not None else log.inference_avg_ms
    cv = (s.std_ms / mean) if s.std_ms is not None and mean else None
    notes = list(warnings or []) + list(log.notes) + [
        f"{NO_SAMPLES} and no statistical verdict in comparisons; p90 and p99 not printed"]
    if log.peak_memory_mb is None:
        notes.append("no peak memory: benchmark_model ran without "
                     "--report_peak_memory_footprint=true")
    source = {"tool": TOOL, "aggregates_only": True, **origin, "wording": log.wording,
              "warmup": log.warmup.to_dict() if log.warmup else None,
              "inference": s.to_dict(), "inference_avg_ms": log.inference_avg_ms,
              "memory_init_mb": log.memory_init_mb,
              "memory_overall_mb": log.memory_overall_mb,
              "peak_memory_mb": log.peak_memory_mb, "model_size_mb": log.model_size_mb,
              "params": dict(log.params)}
    return {
        "status": "ok", "error": None, "runtime": RUNTIME, "runtime_version": None,
        "phases": {"init_ms": log.init_ms, "first_ms": log.first_ms,
                   "warmup_ms": log.warmup_avg_ms},
        "stats": {"n": s.count, "median": log.median_ms, "p90": None, "p95": s.p95_ms,
                  "p99": None, "mean": mean, "std": s.std_ms, "min": s.min_ms,
                  "max": s.max_ms, "cv": cv, "ci_low": None, "ci_high": None},
        "memory": {"peak_rss_mb": log.peak_memory_mb, "load_delta_mb": log.memory_init_mb,
                   "method": MEMORY_METHOD},
        "stop_reason": AGGREGATES_STOP_REASON, "samples_ms": None,
        "environment": {"tool": TOOL, **{k: v for k, v in origin.items()
                                          if k in ("device", "serial", "origin")}},
        "warnings": notes, "op_profile": op_profile_of(log), "source": source,
    }


def medians_side_by_side(a_ref: str, b_ref: str, a_ms: float | None, b_ms: float | None,
                         which: str) -> str:
    """The honest line for a latency comparison that involves an aggregates-only run:
    both medians and their ratio, and why there is no verdict. ``which`` names the run(s)."""
    ratio = (f" (B/A ×{b_ms / a_ms:.3f})" if a_ms and b_ms is not None else "")
    a_text = "-" if a_ms is None else f"{a_ms:.4g} ms"
    b_text = "-" if b_ms is None else f"{b_ms:.4g} ms"
    return (f"latency: medians {a_ref} {a_text}, {b_ref} {b_text}{ratio}; no statistical "
            f"verdict: {which} only aggregates (benchmark_model, no samples), so no CI of "
            "the ratio")


def which_aggregates(a_ref: str, b_ref: str, run_a: Any, run_b: Any) -> str | None:
    """"A's run holds" / "both runs hold" …, or None when neither is aggregates-only."""
    a, b = is_aggregates_only(run_a), is_aggregates_only(run_b)
    if a and b:
        return "both runs hold"
    if a:
        return f"the run of {a_ref} holds"
    if b:
        return f"the run of {b_ref} holds"
    return None
