"""How often the gate's interleaved re-measurement says slower / unchanged / faster, and how fast.

Usage: ``python benchmarks/verdict_rates.py [--n 10] [--repeat-s 1.0] [--profile NAME]``

A throwaway workspace gets ONNX MatMul chains of ``--size`` (default 256): the baseline
with ``--base`` layers (default 20) and candidates with the same bytes (A/A) and with
+1, +2, +4 layers and twice the layers (about +5%, +10%, +20% and 2x the work). Each
case's real work ratio is first measured once with a long interleaved run and printed;
then ``devtrack check CANDIDATE --baseline BASELINE`` (the library call
``gate.check_release``, fresh interleaved rerun, as CI runs it) is repeated ``--n``
times per case on a profile with one thread pinned to core 0 whose measurement window
gives each of the gate's 6 repeats ``--repeat-s`` seconds and whose only limit is
``max_latency_regression_pct = 5`` (``--profile ci-host`` checks on a shipped profile
instead, as it is). The table shows how often each verdict came out (false alarms for A/A,
misses for the slower builds) and the wall time per check.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devtrack.builders.onnx_models import build_matmul_chain
from devtrack.gate import check_release
from devtrack.pairing import RerunSettings, measure_pair, measured_profile
from devtrack.profiles import load_profile
from devtrack.registry import RegisterRequest, register_release
from devtrack.workspace import Workspace, init_workspace

PROFILE = """
name = "verdicts"
description = "big-core-1t with a shorter window: 1 thread pinned to core 0"
formats = ["onnx"]
[execution]
threads = {threads}
cpu_affinity = [0]
timeout_s = 120
[measurement]
warmup_runs = 10
min_runs = 50
min_time_s = {repeat_s}
max_time_s = 20.0
target_rel_ci = 0.01
[budgets]
max_latency_regression_pct = 5.0
"""

# case label -> extra layers over the baseline (None: the baseline's own bytes, A/A)
CASES: dict[str, int | None] = {"A/A": None, "~5%": 1, "~10%": 2, "~20%": 4, "~2x": 0}


def build(ws: Workspace, root: Path, size: int, base: int) -> dict[str, str]:
    """Register the baseline and one candidate per case; returns case -> candidate ref."""
    models = root / "models"
    models.mkdir()
    base_path = build_matmul_chain(models / f"chain{base}.onnx", size=size, layers=base)
    register_release(ws, RegisterRequest(file=base_path, model="chain", version="base"),
                     cwd=root)
    refs = {}
    for label, extra in CASES.items():
        layers = base if extra is None else (2 * base if extra == 0 else base + extra)
        path = base_path if extra is None else build_matmul_chain(
            models / f"chain{layers}.onnx", size=size, layers=layers)
        version = f"l{layers}" + ("-same" if extra is None else "")
        register_release(ws, RegisterRequest(file=path, model="chain", version=version,
                                             parent="base"), cwd=root)
        refs[label] = f"chain@{version}"
    return refs


def verify(ws: Workspace, refs: dict[str, str], repeats: int, repeat_s: float) -> None:
    """One long interleaved measurement per case: the real work ratio the gate must see."""
    from devtrack.registry import get_release

    profile = measured_profile(load_profile("verdicts", ws.root))
    base = get_release(ws, "chain@base")
    print(f"real work ratio, one long interleaved run each ({repeats} × {repeat_s:g} s):")
    for label, ref in refs.items():
        started = time.monotonic()
        result = measure_pair(ws, base, get_release(ws, ref), profile,
                              RerunSettings(repeats=repeats, repeat_s=repeat_s))
        if not result.ok:
            print(f"  {label:6} FAILED: {result.error}")
            continue
        print(f"  {label:6} {ref:18} ratio {result.ratio:.4f}  95% CI {result.ci_low:.4f}–"
              f"{result.ci_high:.4f}  ({time.monotonic() - started:.0f} s)", flush=True)


def rates(ws: Workspace, refs: dict[str, str], n: int, profile: str) -> None:
    rows = []
    for label, ref in refs.items():
        verdicts: list[str] = []
        ratios: list[float] = []
        times: list[float] = []
        for _ in range(n):
            started = time.monotonic()
            report = check_release(ws, ref, baseline="chain@base", profiles=[profile])
            times.append(time.monotonic() - started)
            latency = report.profiles[0].latency
            verdicts.append(latency.verdict if latency else "error")
            if latency:
                ratios.append(latency.ratio)
        counts = {v: verdicts.count(v) for v in ("slower", "unchanged", "faster", "error")}
        expected = "unchanged" if label == "A/A" else "slower"
        wrong = n - counts[expected]
        kind = "false alarms" if label == "A/A" else "misses"
        rows.append((label, counts, wrong, kind, ratios, times))
        print(f"  {label:6} slower {counts['slower']:2}  unchanged {counts['unchanged']:2}  "
              f"faster {counts['faster']:2}  error {counts['error']}  {kind} {wrong}/{n}  "
              f"ratios {min(ratios, default=0):.3f}–{max(ratios, default=0):.3f}  "
              f"{statistics.mean(times):.1f} s per check", flush=True)
    print()
    print("| case | slower | unchanged | faster | false alarms / misses | gate ratio range | "
          "s per check (mean, max) |")
    print("|---|---|---|---|---|---|---|")
    for label, counts, wrong, kind, ratios, times in rows:
        print(f"| {label} | {counts['slower']} | {counts['unchanged']} | {counts['faster']} | "
              f"{kind} {wrong}/{n} ({100 * wrong / n:.0f}%) | "
              f"{min(ratios, default=0):.3f}–{max(ratios, default=0):.3f} | "
              f"{statistics.mean(times):.1f}, {max(times):.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="checks per case")
    parser.add_argument("--repeat-s", type=float, default=1.0,
                        help="seconds per repeat of the gate's interleaved run (6 repeats)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="verdicts",
                        help="profile the checks run on (default: the synthetic one above)")
    parser.add_argument("--size", type=int, default=256, help="MatMul size")
    parser.add_argument("--base", type=int, default=20, help="baseline layers")
    parser.add_argument("--verify-repeats", type=int, default=6)
    parser.add_argument("--verify-s", type=float, default=2.5)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="devtrack-verdicts-") as tmp:
        root = Path(tmp) / "ws"
        ws, _ = init_workspace(root)
        (root / "device_profiles" / "verdicts.toml").write_text(
            PROFILE.format(threads=args.threads, repeat_s=args.repeat_s))
        refs = build(ws, root, args.size, args.base)
        checked = load_profile(args.profile, root)
        print(f"MatMul chain {args.size}x{args.size}, baseline {args.base} layers; gate on "
              f"{checked.name}: 6 × {max(0.2, checked.measurement.min_time_s):g} s "
              f"interleaved, {checked.execution.threads} thread(s), affinity "
              f"{list(checked.execution.cpu_affinity) or 'none'}, threshold "
              f"{checked.budgets.max_latency_regression_pct or 5:g}%")
        verify(ws, refs, args.verify_repeats, args.verify_s)
        print(f"\nverdicts of {args.n} gate checks per case:")
        rates(ws, refs, args.n, args.profile)
        ws.close()
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
