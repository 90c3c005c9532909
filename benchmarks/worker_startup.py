"""How much of a worker's time is not the timed loop, against the 5 s the timeout rule allows.

Usage: ``python benchmarks/worker_startup.py [--repeats 5]``

``core.limits.worker_seconds`` asks a profile's ``timeout_s`` to hold STARTUP_S (5 s) for
everything but the timed loop: Python start, runtime import, model load, first run, warm-up
and writing the result. This measures that share for real workers (``run_measurement``, a
fresh process each) on a tiny and a large model of each format, side by side in one run
(models alternate within each repeat): the worker's wall time minus its timed loop. Printed
per model: median and max seconds, and STARTUP_S over the max (the headroom; > 1 fits).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from devtrack.benchmarking import BenchOverrides, plan, run_measurement
from devtrack.core.limits import STARTUP_S
from devtrack.profiles import load_profile_file
from devtrack.registry import RegisterRequest, register_release
from devtrack.workspace import Workspace, init_workspace

PROFILE = """
name = "startup"
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 10
min_runs = 10
min_time_s = 0.2
max_time_s = 0.2
"""


def build_models(folder: Path) -> dict[str, Path]:
    from devtrack.builders.onnx_models import build_mlp
    from devtrack.builders.tflite_models import build_tflite_mlp

    large = {"in_features": 1024, "hidden": (3072, 3072), "classes": 1000}  # ~60 MB
    return {
        "onnx tiny": build_mlp(folder / "tiny.onnx", in_features=16, hidden=(8,), classes=4),
        "onnx 60 MB": build_mlp(folder / "large.onnx", **large),  # type: ignore[arg-type]
        "tflite tiny": build_tflite_mlp(folder / "tiny.tflite", in_features=16, hidden=(8,),
                                        classes=4),
        "tflite 60 MB": build_tflite_mlp(folder / "large.tflite", **large),  # type: ignore[arg-type]
    }


def outside_loop_s(ws: Workspace, run_id: int) -> float:
    row = ws.store.one("SELECT details FROM runs WHERE id = ?", (run_id,))
    assert row is not None
    details = json.loads(row["details"])
    return float(details["isolation"]["wall_s"]) - float(details["phases"]["loop_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_models(root)
        ws, _ = init_workspace(root / "ws")
        path = ws.profiles_dir / "startup.toml"
        path.write_text(PROFILE)
        profile = load_profile_file(path)
        overrides = BenchOverrides(evaluate=False)
        measurements = {}
        for i, (label, model) in enumerate(models.items()):
            release = register_release(ws, RegisterRequest(file=model, model=f"m{i}",
                                                           version="1"))
            [measurements[label]], _ = plan([release], [profile], overrides)
        seconds: dict[str, list[float]] = {label: [] for label in models}
        for r in range(args.repeats):
            order = list(models) if r % 2 == 0 else list(reversed(models))
            for label in order:
                run = run_measurement(ws, measurements[label], overrides)
                assert run["status"] == "ok", run["error"]
                seconds[label].append(outside_loop_s(ws, run["run_id"]))
        ws.close()
    print(f"worker time outside the timed loop, {args.repeats} workers per model "
          f"(allowed: STARTUP_S = {STARTUP_S:g} s)")
    for label, values in seconds.items():
        worst = max(values)
        print(f"  {label:13s} median {statistics.median(values):.2f} s, max {worst:.2f} s, "
              f"headroom {STARTUP_S / worst:.1f}x")


if __name__ == "__main__":
    main()
