"""explain and bisect on built lines: how many measurements a bisect takes, and whether
explain's per-node shares add up to the measured total change.

1. Bisect: a line of 8 releases (MatMul chains, parent chain), one bad step (6 → 12 layers)
   at each position in turn; prints the side-by-side measurements each bisect used (the
   claim: at most 4) and whether it found the bad step. A second line has a TFLite release
   (unrunnable on the ONNX-only profile) in the middle: it is skipped and reported.
2. Explain: A = 8 layers, B = 12 layers of 256×256 MatMul + Relu (a known inserted cost:
   4 MatMul and 4 Relu nodes). Prints the measured total change per inference, the sum of
   the nodes' deltas and their ratio (the claim: within 10%), the added nodes' share, and,
   for reference, the total change from an independent side-by-side measurement
   (``pairing.measure_pair``).

Usage: python benchmarks/explain_bisect.py [--positions 1,4,7] [--repeats 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtrack.bisecting import bisect_releases
from devtrack.builders.onnx_models import build_matmul_chain
from devtrack.builders.tflite_models import build_tflite_mlp
from devtrack.explaining import ExplainSettings, explain_releases
from devtrack.pairing import measure_pair, measured_profile
from devtrack.profiles import load_profile
from devtrack.registry import RegisterRequest, get_release, register_release
from devtrack.workspace import Workspace, init_workspace

PROFILE = """
name = "bench"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 120
[measurement]
warmup_runs = 5
min_runs = 20
min_time_s = 0.3
max_time_s = 1.0
target_rel_ci = 0.05
[budgets]
max_latency_regression_pct = 5.0
"""


def workspace(root: Path) -> Workspace:
    ws, _ = init_workspace(root)
    (root / "device_profiles" / "bench.toml").write_text(PROFILE)
    return ws


def register_line(ws: Workspace, root: Path, model: str, files: list[Path]) -> None:
    parent = None
    for i, path in enumerate(files):
        version = f"1.{i}"
        register_release(ws, RegisterRequest(file=path, model=model, version=version,
                                             parent=parent), cwd=root)
        parent = version


def bisect_part(root: Path, models: Path, positions: list[int]) -> bool:
    ws = workspace(root / "bisect")
    good = [build_matmul_chain(models / f"g{i}.onnx", size=128, layers=6, seed=i)
            for i in range(8)]
    bad = [build_matmul_chain(models / f"b{i}.onnx", size=128, layers=12, seed=i)
           for i in range(8)]
    print("bisect over 8 releases (1.0 … 1.7), one bad step (6 → 12 layers):")
    print(f"{'bad step':>9} {'found':>7} {'measurements':>13} {'skipped':>8} {'wall s':>7}")
    ok = True
    for k in positions:
        model = f"line{k}"
        register_line(ws, root / "bisect", model, [good[i] if i < k else bad[i]
                                                   for i in range(8)])
        t0 = time.perf_counter()
        result = bisect_releases(ws, model, "1.0", "1.7", "bench", explain=False)
        wall = time.perf_counter() - t0
        found = result.first_bad == f"{model}@1.{k}"
        ok &= found and result.measurements <= 4
        print(f"{f'1.{k}':>9} {found!s:>7} {result.measurements:>13} "
              f"{len(result.skipped):>8} {wall:>7.1f}")
    tfl = build_tflite_mlp(models / "mid.tflite")
    files = [good[0], good[1], good[2], tfl, good[4], bad[5], bad[6], bad[7]]
    register_line(ws, root / "bisect", "mixed", files)
    result = bisect_releases(ws, "mixed", "1.0", "1.7", "bench", explain=False)
    skipped = ", ".join(f"{s.ref} ({s.reason})" for s in result.skipped) or "none"
    found = result.first_bad == "mixed@1.5"
    ok &= found and result.measurements <= 4
    print(f"with a TFLite release at 1.3: first bad {result.first_bad} (expected mixed@1.5), "
          f"{result.measurements} measurements, skipped: {skipped}")
    ws.close()
    return ok


def explain_part(root: Path, models: Path, repeats: int) -> bool:
    ws = workspace(root / "explain")
    a = build_matmul_chain(models / "e8.onnx", size=256, layers=8, seed=0)
    b = build_matmul_chain(models / "e12.onnx", size=256, layers=12, seed=0)
    register_line(ws, root / "explain", "mm", [a, b])
    e = explain_releases(ws, "mm@1.0", "mm@1.1", "bench", ExplainSettings(repeats=repeats))
    total = e.delta_ms or 0.0
    node_sum = sum(c.delta_ms for c in e.nodes)
    added = sum(c.share or 0.0 for c in e.nodes if c.status == "added")
    profile = measured_profile(load_profile("bench", ws.root))
    paired = measure_pair(ws, get_release(ws, "mm@1.0"), get_release(ws, "mm@1.1"), profile)
    pair_total = (paired.b_ms or 0.0) - (paired.a_ms or 0.0)
    print("\nexplain 8 → 12 layers of 256×256 MatMul + Relu (4 + 4 nodes inserted):")
    print(f"  A {e.a_ms:.4f} ms, B {e.b_ms:.4f} ms per inference; B/A {e.ratio:.3f} "
          f"(expected ~{12 / 8:.2f} from the work)")
    print(f"  measured total change      {total:+.4f} ms")
    print(f"  sum of the nodes' deltas   {node_sum:+.4f} ms  ratio {node_sum / total:.3f} "
          f"(shares add up to {e.attributed_share * 100 if e.attributed_share else 0:.1f}%)")
    print(f"  added nodes' share         {added * 100:.1f}%")
    print(f"  independent side-by-side   {pair_total:+.4f} ms (pairing.measure_pair); "
          f"nodes / it {node_sum / pair_total:.3f}")
    print(f"  headline: {e.headline}")
    ws.close()
    return abs(node_sum / total - 1.0) <= 0.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="1,3,5,7",
                        help="bad-step positions to bisect (1..7), comma-separated")
    parser.add_argument("--repeats", type=int, default=4, help="explain's repeats (even)")
    args = parser.parse_args()
    positions = [int(x) for x in args.positions.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="devtrack-explain-bench-") as tmp:
        root, models = Path(tmp), Path(tmp) / "models"
        bisect_ok = bisect_part(root, models, positions)
        explain_ok = explain_part(root, models, args.repeats)
    print(f"\nbisect: ≤ 4 measurements and the right answer: {'yes' if bisect_ok else 'NO'}; "
          f"explain: nodes within 10% of the total: {'yes' if explain_ok else 'NO'}")
    return 0 if bisect_ok and explain_ok else 1


if __name__ == "__main__":
    sys.exit(main())
