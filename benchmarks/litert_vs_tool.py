"""devtrack against LiteRT's own Python benchmark tool, on the same TFLite model and threads.

Usage: ``python benchmarks/litert_vs_tool.py [--repeats 5] [--threads 1] [--model FILE]``

The tool is ``ai_edge_litert/tools/benchmark_litert_model.py`` from the installed wheel; it
runs the CompiledModel API, so devtrack's profile here uses ``api = "compiled_model"`` too.
Each repeat runs the tool once and devtrack once (a fresh worker process each, order
alternated), on a model the script builds (a float32 MLP of a few ms) unless ``--model``
is given. Printed: each side's median per repeat, the ratio of the two medians of medians
(target: within 3%), and each side's run-to-run spread of the median (target: devtrack's no
larger than the tool's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ai_edge_litert

from devtrack.benchmarking import BenchOverrides, plan, run_measurement
from devtrack.profiles import load_profile_file
from devtrack.registry import RegisterRequest, register_release
from devtrack.workspace import init_workspace

TOOL = Path(ai_edge_litert.__file__).parent / "tools" / "benchmark_litert_model.py"

PROFILE = """
name = "litert-tool"
formats = ["tflite"]
[execution]
threads = {threads}
timeout_s = 120
[litert]
api = "compiled_model"
[measurement]
warmup_runs = 10
min_runs = 50
min_time_s = {seconds}
max_time_s = {seconds}
target_rel_ci = 0.0001
"""


def tool_median(model: Path, threads: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, str(TOOL), f"--model={model}",
                        f"--num_threads={threads}", f"--num_runs={runs}", "--warmup_runs=10",
                        f"--result_json={out}"], check=True, capture_output=True)
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per run")
    parser.add_argument("--model", type=Path, help="a .tflite file (default: built here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model
        if model is None:
            from devtrack.builders.tflite_models import build_tflite_mlp

            model = root / "mlp.tflite"
            build_tflite_mlp(model, in_features=1024, hidden=(3072, 3072), classes=1000)
        ws, _ = init_workspace(root / "ws")
        profile_path = ws.profiles_dir / "litert-tool.toml"
        profile_path.write_text(PROFILE.format(threads=args.threads, seconds=args.seconds))
        profile = load_profile_file(profile_path)
        release = register_release(ws, RegisterRequest(file=model, model="bench", version="1"))
        overrides = BenchOverrides(evaluate=False)
        [measurement], _ = plan([release], [profile], overrides)

        first = run_measurement(ws, measurement, overrides)
        runs = max(50, int(args.seconds * 1000 / first["p50_ms"]))
        print(f"model {model.name}: {release.size_bytes / 2**20:.1f} MB, {args.threads} "
              f"thread(s); the tool runs {runs} inferences per repeat, devtrack "
              f"{args.seconds:g} s")
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(args.repeats):
            t0 = time.monotonic()
            sides = ("tool", "devtrack") if r % 2 == 0 else ("devtrack", "tool")
            for side in sides:
                if side == "tool":
                    theirs.append(tool_median(model, args.threads, runs))
                else:
                    ours.append(run_measurement(ws, measurement, overrides)["p50_ms"])
            print(f"  repeat {r + 1}: tool {theirs[-1]:.3f} ms, devtrack {ours[-1]:.3f} ms "
                  f"({time.monotonic() - t0:.0f} s)")
        ws.close()
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"median of medians: tool {statistics.median(theirs):.3f} ms, devtrack "
          f"{statistics.median(ours):.3f} ms, ratio {ratio:.3f} (target within 0.97-1.03)")
    print(f"run-to-run spread of the median (max-min)/median: tool {spread(theirs):.1%}, "
          f"devtrack {spread(ours):.1%} (target: devtrack <= tool)")
    print("note: the tool reports medians rounded to 0.01 ms")


if __name__ == "__main__":
    main()
