"""What measuring through SSH costs: one model here vs on an SSH "device" that is this host.

Usage: ``python benchmarks/lab_overhead.py [--rounds R] [--loop-s S]`` (needs the test extra:
it starts the test suite's asyncssh server on 127.0.0.1, tests/sshserver.py, and reaches it
with the system's OpenSSH client, as devtrack does a board).

1. The link is never inside the timed loop: a ~1 ms ONNX MatMul chain is measured
   alternately by ``runner.run_job`` (a local worker) and ``remote.run_remote_job`` (the
   same worker started by the shipped supervisor through ssh), order flipped every round so
   drift hits both alike. Target: p50 via SSH / p50 local within 1 ± 0.02. The wall time of
   each (ssh connect, cache check, Python start, lock, result back) is shown beside it.
2. Three "devices" (three workdirs, so three locks, on the same server) measured one after
   another, then all three at once from three threads: the wall-time ratio. They share this
   host's cores, so the parallel time includes their contention, not only the overlap of
   the fixed costs a real lab of three boards would get.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sshserver import start_lab

from devtrack.bench.remote import run_remote_job
from devtrack.bench.runner import run_job
from devtrack.bench.ssh_transport import SshDevice
from devtrack.builders.onnx_models import build_matmul_chain
from devtrack.core.targets import SshSettings


def job_for(path: Path, loop_s: float) -> dict[str, Any]:
    return {"artifact_path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "format": "onnx", "options": {},
            "measurement": {"warmup_runs": 20, "min_runs": 50, "min_time_s": loop_s,
                            "max_time_s": loop_s, "target_rel_ci": 0.0}}


LIMITS: dict[str, Any] = {"threads": 1, "cpu_affinity": None, "memory_limit_mb": None,
                          "timeout_s": 120}


def timed(run: Any) -> tuple[float, float]:
    started = time.monotonic()
    result = run()
    if result["status"] != "ok":
        raise SystemExit(f"measurement failed: {result.get('error')}")
    return float(result["stats"]["median"]), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loop-s", type=float, default=1.5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="devtrack-lab-bench-", dir="/tmp"))
    lab = start_lab(root)
    try:
        model = build_matmul_chain(root / "chain.onnx", size=256, layers=7, seed=0)
        job = job_for(model, args.loop_s)
        settings = SshSettings(options=tuple(lab.options()), connect_timeout_s=5)
        device = SshDevice.of("bench-device", lab.target, settings)
        run_remote_job(job, device, **LIMITS)  # ship the zipapp and the model once
        runs: dict[str, list[tuple[float, float]]] = {"local": [], "control": [], "ssh": []}
        kinds = ("local", "ssh", "control")
        for r in range(args.rounds):
            for kind in kinds[r % 3:] + kinds[:r % 3]:
                if kind == "ssh":
                    runs[kind].append(timed(lambda: run_remote_job(job, device, **LIMITS)))
                else:
                    runs[kind].append(timed(lambda: run_job(job, **LIMITS)))
        local, remote = runs["local"], runs["ssh"]
        ratios = [s[0] / lo[0] for s, lo in zip(remote, local, strict=True)]
        control = [c[0] / lo[0] for c, lo in zip(runs["control"], local, strict=True)]
        print(f"1. ~1 ms MatMul chain, {args.rounds} rounds of {args.loop_s:g} s loops, "
              "order rotated")
        print(f"   p50 local  {statistics.median(x[0] for x in local):8.4f} ms   "
              f"wall {statistics.median(x[1] for x in local):6.2f} s")
        print(f"   p50 ssh    {statistics.median(x[0] for x in remote):8.4f} ms   "
              f"wall {statistics.median(x[1] for x in remote):6.2f} s")
        print(f"   p50 ratio ssh/local:   median {statistics.median(ratios):.4f} "
              f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
        print(f"   control local/local:   median {statistics.median(control):.4f} "
              f"(rounds: {', '.join(f'{x:.3f}' for x in control)})")
        added = [s[1] - lo[1] for s, lo in zip(remote, local, strict=True)]
        p50_ssh = statistics.median(x[0] for x in remote)
        p50_local = statistics.median(x[0] for x in local)
        print(f"   ratio of the medians ssh/local: {p50_ssh / p50_local:.4f}")
        print(f"   wall added by ssh per measurement: median {statistics.median(added):.2f} s")

        devices = [SshDevice.of(f"board{i}", lab.target,
                                replace(settings, workdir=str(root / f"board{i}")))
                   for i in range(3)]
        for d in devices:
            run_remote_job(job, d, **LIMITS)  # each "board" gets its own cache once
        started = time.monotonic()
        for d in devices:
            timed(lambda d=d: run_remote_job(job, d, **LIMITS))
        one_by_one = time.monotonic() - started
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda d: timed(lambda: run_remote_job(job, d, **LIMITS)), devices))
        parallel = time.monotonic() - started
        print("2. three devices (three locks, one host's cores)")
        print(f"   one after another {one_by_one:6.2f} s, in parallel {parallel:6.2f} s: "
              f"ratio {parallel / one_by_one:.2f}")
    finally:
        lab.kill()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
