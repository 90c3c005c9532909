"""Devices in parallel against one after another: the wall time of one bench of N profiles.

Usage: ``python benchmarks/parallel_devices.py [--devices 3] [--repeats 3] [--seconds 1.0]``

No device is attached here, so each "device" is a stand-in target scheme whose runner is the
real local worker (``targets.run_local``): N profiles on N distinct targets (``bench`` runs
them at once, one thread each) against the same N profiles on one target (one after
another), alternating within each repeat, all through ``orchestration.bench`` with real
workers and real SQLite. Printed: the wall time of each, and sequential / parallel. On real
devices each worker has its own CPU; here N workers share this host's cores, so the ratio is
bounded by the core count once start-up (Python, runtime import, model load) is overlapped.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from devtrack.benchmarking import BenchOverrides
from devtrack.builders.onnx_models import build_mlp
from devtrack.core.profile import Profile
from devtrack.orchestration import bench
from devtrack.profiles import load_profile
from devtrack.registry import RegisterRequest, get_release, register_release
from devtrack.targets import Target, register_target, run_local
from devtrack.workspace import Workspace, init_workspace

PROFILE = """name = "{name}"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 5
min_runs = 10
min_time_s = {seconds}
max_time_s = {seconds}
"""


def profiles(ws: Workspace, count: int, seconds: float, distinct: bool) -> list[Profile]:
    chosen = []
    for i in range(count):
        name = f"dev{i}"
        (ws.root / "device_profiles" / f"{name}.toml").write_text(
            PROFILE.format(name=name, seconds=seconds), encoding="utf-8")
        loaded = load_profile(name, ws.root)
        target = f"stand-in://board{i if distinct else 0}"
        chosen.append(replace(loaded, execution=replace(loaded.execution, target=target)))
    return chosen


def timed_bench(ws: Workspace, chosen: list[Profile]) -> float:
    start = time.perf_counter()
    outcome = bench(ws, [get_release(ws, "mlp@1.0")], chosen, BenchOverrides())
    wall = time.perf_counter() - start
    assert [r["status"] for r in outcome.runs] == ["ok"] * len(chosen), outcome.runs
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed loop per job")
    args = parser.parse_args()
    register_target(Target("stand-in", run_local))
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = init_workspace(Path(tmp) / "ws")
        with ws:
            model = build_mlp(Path(tmp) / "mlp.onnx", in_features=64, hidden=(64,), classes=10,
                              seed=0)
            register_release(ws, RegisterRequest(model, "mlp", "1.0"), cwd=Path(tmp))
            parallel = profiles(ws, args.devices, args.seconds, distinct=True)
            one_device = profiles(ws, args.devices, args.seconds, distinct=False)
            walls: dict[str, list[float]] = {"parallel": [], "one device": []}
            for repeat in range(args.repeats):
                order = [("parallel", parallel), ("one device", one_device)]
                for label, chosen in order if repeat % 2 == 0 else order[::-1]:
                    walls[label].append(timed_bench(ws, chosen))
    par, seq = (statistics.median(walls[k]) for k in ("parallel", "one device"))
    print(f"{args.devices} jobs of {args.seconds:g} s timed loop each, {args.repeats} repeats "
          f"(median wall time)")
    print(f"  {args.devices} devices in parallel: {par:6.2f} s  "
          f"{[round(w, 2) for w in walls['parallel']]}")
    print(f"  one device, in turn:    {seq:6.2f} s  "
          f"{[round(w, 2) for w in walls['one device']]}")
    print(f"  one after another / parallel: {seq / par:.2f}x")


if __name__ == "__main__":
    main()
