"""How much devtrack's measured loop adds to a bare perf_counter_ns loop on the same session.

Usage: ``python benchmarks/harness_overhead.py [--threads N] [--rounds R] [--round-s S]``

For a ~1 ms and a ~10 ms ONNX MatMul chain, one session is opened through devtrack's runtime
adapter; rounds of the worker's own ``measure_loop`` (the code that produces a run's reported
median) alternate with rounds of a bare loop that calls ``InferenceSession.run`` directly,
order flipped every round, so drift hits both alike. Target: devtrack / bare ≤ 1.02.
A last column shows the median of a full isolated run through ``run_job`` (another process,
so another session; for orientation only).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from devtrack.bench.runner import run_job
from devtrack.bench.worker import measure_loop
from devtrack.builders.onnx_models import build_matmul_chain
from devtrack.core.stats import StoppingRule, summarize
from devtrack.runtimes import RuntimeOptions, open_session
from devtrack.runtimes.onnxruntime_rt import OrtSession

MODELS = {"~1 ms": (256, 7), "~10 ms": (512, 9)}  # (size, layers) on the 2-core dev VM


def bare_loop(session: OrtSession, feeds: dict[str, np.ndarray], duration_s: float,
              ) -> np.ndarray:
    """The simplest honest loop: perf_counter_ns around the raw onnxruntime call."""
    raw = session._sess  # the very InferenceSession devtrack's adapter runs
    clock = time.perf_counter_ns
    out = []
    end = clock() + int(duration_s * 1e9)
    while clock() < end:
        t0 = clock()
        raw.run(None, feeds)
        out.append(clock() - t0)
    return np.array(out, dtype=np.float64) / 1e6


def compare(path: Path, size: int, threads: int, rounds: int, round_s: float,
            ) -> tuple[float, float]:
    session = open_session(path, "onnx", RuntimeOptions(threads=threads))
    assert isinstance(session, OrtSession)
    feeds = {"input": np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)}
    for _ in range(10):
        session.run(feeds)
    rule = StoppingRule(min_runs=1, min_time_s=round_s, max_time_s=round_s, target_rel_ci=0.0)
    ours: list[np.ndarray] = []
    bare: list[np.ndarray] = []
    for r in range(rounds):
        for kind in (("ours", "bare") if r % 2 == 0 else ("bare", "ours")):
            if kind == "ours":
                samples_ns, _, _ = measure_loop(session, feeds, rule, est_ns=1e6)
                ours.append((samples_ns / 1e6).astype(np.float32))
            else:
                bare.append(bare_loop(session, feeds, round_s))
    return (summarize(np.concatenate(ours)).median,
            summarize(np.concatenate(bare).astype(np.float32)).median)


def isolated_median(path: Path, threads: int) -> float | None:
    job = {"artifact_path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
           "format": "onnx", "measurement": {"warmup_runs": 10, "min_runs": 50,
                                             "min_time_s": 2.0, "max_time_s": 4.0,
                                             "target_rel_ci": 0.005}}
    result = run_job(job, threads=threads, cpu_affinity=None, memory_limit_mb=None,
                     timeout_s=60)
    return result["stats"]["median"] if result["status"] == "ok" else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--round-s", type=float, default=0.75)
    args = parser.parse_args()
    print(f"threads={args.threads}, {args.rounds} alternating rounds of {args.round_s:g} s "
          f"per method and model")
    print(f"{'model':8} {'devtrack ms':>12} {'bare ms':>10} {'ratio':>7}   {'run_job ms':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (size, layers) in MODELS.items():
            path = build_matmul_chain(Path(tmp) / f"chain_{size}_{layers}.onnx", size=size,
                                      layers=layers)
            ours, bare = compare(path, size, args.threads, args.rounds, args.round_s)
            iso = isolated_median(path, args.threads)
            iso_text = f"{iso:10.4f}" if iso is not None else "    failed"
            print(f"{label:8} {ours:12.4f} {bare:10.4f} {ours / bare:7.4f}   {iso_text}")


if __name__ == "__main__":
    main()
