"""How often the gate's sequential side-by-side measurement says slower / unchanged, and how fast.

Usage: ``python benchmarks/verdict_rates.py [--threads 1,2] [--n 10] [--n-others 5]
[--limit 1] [--case-limit +5%=2] [--repeats 24] [--repeat-s 0.5] [--clock cpu|wall]
[--profile NAME]``

A throwaway workspace gets ONNX MatMul chains of ``--size`` (default 128): the baseline
with ``--base`` layers (default 100) and candidates with the same bytes (A/A) and with 2%,
5%, 10%, 20% more layers and twice the layers. For each thread count, each case's real
work ratio is first measured with one long interleaved run of fixed repeats and printed;
then ``devtrack check CANDIDATE --baseline BASELINE`` (the library call
``gate.check_release``, a fresh sequential side-by-side measurement, as CI runs it) is
repeated ``--n`` times for A/A and +2% and ``--n-others`` times for the rest, on a profile
whose only limit is ``max_latency_regression_pct`` = the case's limit (``--limit``, per
case ``--case-limit CASE=PCT``). One thread is pinned to core 0; two threads run
unpinned, as the shipped ``ci-host`` profile does (``--profile ci-host`` checks on that
profile as it is instead). The table shows each verdict's count, how many were decided
(not left undecided at the cap), the median and longest seconds per check and the median
repeats. The load average is printed before and after: other jobs on the machine widen
the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtrack.builders.onnx_models import build_matmul_chain
from devtrack.gate import check_release, is_inconclusive
from devtrack.pairing import RerunSettings, measure_pair, measured_profile
from devtrack.profiles import load_profile
from devtrack.registry import RegisterRequest, get_release, register_release
from devtrack.workspace import Workspace, init_workspace

PROFILE = """
name = "{name}"
description = "verdict rates: {threads} thread(s), limit {limit:g}%"
formats = ["onnx"]
[execution]
threads = {threads}
{affinity}
timeout_s = 300
[measurement]
warmup_runs = 5
min_runs = 20
min_time_s = 0.5
max_time_s = 20.0
target_rel_ci = 0.01
[budgets]
max_latency_regression_pct = {limit:g}
"""

# case label -> relative extra work (None: the baseline's own bytes, A/A)
CASES: dict[str, float | None] = {"A/A": None, "+2%": 0.02, "+5%": 0.05, "+10%": 0.10,
                                  "+20%": 0.20, "2x": 1.0}
MAIN_CASES = ("A/A", "+2%")  # measured --n times; the others --n-others times


@dataclass
class CaseResult:
    """The checks of one case on one thread count."""

    label: str
    limit: float
    verdicts: list[str] = field(default_factory=list)
    decided: int = 0
    ratios: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    repeats: list[int] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return self.verdicts.count(verdict)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def build(ws: Workspace, root: Path, size: int, base: int) -> dict[str, str]:
    """Register the baseline and one candidate per case; returns case -> candidate ref."""
    models = root / "models"
    models.mkdir()
    base_path = build_matmul_chain(models / f"chain{base}.onnx", size=size, layers=base)
    register_release(ws, RegisterRequest(file=base_path, model="chain", version="base"),
                     cwd=root)
    refs = {}
    for label, extra in CASES.items():
        layers = base if extra is None else base + max(1, round(base * extra))
        path = base_path if extra is None else build_matmul_chain(
            models / f"chain{layers}.onnx", size=size, layers=layers)
        version = f"l{layers}" + ("-same" if extra is None else "")
        register_release(ws, RegisterRequest(file=path, model="chain", version=version,
                                             parent="base"), cwd=root)
        refs[label] = f"chain@{version}"
    return refs


def write_profile(root: Path, threads: int, limit: float) -> str:
    name = f"verdicts-{threads}t-{limit:g}".replace(".", "_")
    affinity = "cpu_affinity = [0]" if threads == 1 else "# unpinned, as ci-host"
    (root / "device_profiles" / f"{name}.toml").write_text(
        PROFILE.format(name=name, threads=threads, limit=limit, affinity=affinity))
    return name


def verify(ws: Workspace, refs: dict[str, str], profile_name: str, repeats: int,
           repeat_s: float) -> None:
    """One long interleaved run of fixed repeats per case: the work ratio the gate must see."""
    profile = measured_profile(load_profile(profile_name, ws.root))
    base = get_release(ws, "chain@base")
    print(f"real work ratio, one long interleaved run each ({repeats} × {repeat_s:g} s):")
    for label, ref in refs.items():
        started = time.monotonic()
        result = measure_pair(ws, base, get_release(ws, ref), profile,
                              RerunSettings(repeats=repeats, repeat_s=repeat_s,
                                            sequential=False))
        if not result.ok:
            print(f"  {label:5} FAILED: {result.error}")
            continue
        print(f"  {label:5} {ref:18} ratio {result.ratio:.4f}  95% CI {result.ci_low:.4f}–"
              f"{result.ci_high:.4f}  ({time.monotonic() - started:.0f} s)", flush=True)


def run_case(ws: Workspace, label: str, ref: str, profile: str, limit: float, n: int,
             settings: RerunSettings) -> CaseResult:
    case = CaseResult(label, limit)
    for _ in range(n):
        started = time.monotonic()
        report = check_release(ws, ref, baseline="chain@base", profiles=[profile],
                               settings=settings)
        case.seconds.append(time.monotonic() - started)
        latency = report.profiles[0].latency
        case.verdicts.append(latency.verdict if latency else "error")
        if latency:
            case.ratios.append(latency.ratio)
            case.repeats.append(latency.n)
            case.decided += latency.verdict == "slower" or not is_inconclusive(latency)
    extra_pct = 100 * (CASES[label] or 0.0)
    expected = ("slower" if extra_pct > limit else "unchanged" if extra_pct < limit
                else "either")
    print(f"  {label:5} limit {limit:g}%: slower {case.count('slower'):2}  unchanged "
          f"{case.count('unchanged'):2}  faster {case.count('faster')}  error "
          f"{case.count('error')}  expected {expected} "
          f"{n if expected == 'either' else case.count(expected)}/{n}  decided "
          f"{case.decided}/{n}  ratios {min(case.ratios, default=0):.3f}–"
          f"{max(case.ratios, default=0):.3f}  {statistics.median(case.seconds):.1f} s "
          f"median per check, {statistics.median(case.repeats or [0]):g} repeats",
          flush=True)
    return case


def print_table(threads: int, cases: list[CaseResult]) -> None:
    print("\n| threads | case | limit | slower | unchanged | faster | decided | "
          "s per check (median, max) | repeats (median) | gate ratio range |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        n = len(c.verdicts)
        print(f"| {threads} | {c.label} | {c.limit:g}% | {c.count('slower')}/{n} | "
              f"{c.count('unchanged')}/{n} | {c.count('faster')}/{n} | {c.decided}/{n} | "
              f"{statistics.median(c.seconds):.1f}, {max(c.seconds):.1f} | "
              f"{statistics.median(c.repeats or [0]):g} | "
              f"{min(c.ratios, default=0):.3f}–{max(c.ratios, default=0):.3f} |")
    print(flush=True)


def parse_case_limits(items: list[str]) -> dict[str, float]:
    limits = {}
    for item in items:
        label, _, pct = item.partition("=")
        if label not in CASES or not pct:
            raise SystemExit(f"--case-limit wants CASE=PCT with CASE one of "
                             f"{', '.join(CASES)}, got {item!r}")
        limits[label] = float(pct)
    return limits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--n", type=int, default=10, help="checks per case for A/A and +2%%")
    parser.add_argument("--n-others", type=int, default=None,
                        help="checks per case for the other cases (default --n)")
    parser.add_argument("--cases", default=",".join(CASES), help="cases, comma-separated")
    parser.add_argument("--limit", type=float, default=1.0,
                        help="max_latency_regression_pct of every case (percent)")
    parser.add_argument("--case-limit", action="append", default=[], metavar="CASE=PCT",
                        help="another limit for one case, e.g. +5%%=2; repeatable")
    parser.add_argument("--repeats", type=int, default=24, help="cap of sequential repeats")
    parser.add_argument("--repeat-s", type=float, default=None,
                        help="seconds per repeat (default: the gate's own, 0.5)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="what the side-by-side decision judges (default: CPU time)")
    parser.add_argument("--profile", default=None,
                        help="check on this profile as it is (e.g. ci-host) instead")
    parser.add_argument("--size", type=int, default=128, help="MatMul size")
    parser.add_argument("--base", type=int, default=100, help="baseline layers")
    parser.add_argument("--verify-repeats", type=int, default=6)
    parser.add_argument("--verify-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    case_limits = parse_case_limits(args.case_limit)
    chosen = [c for c in args.cases.split(",") if c]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case {unknown[0]!r}; cases: {', '.join(CASES)}")
    n_others = args.n if args.n_others is None else args.n_others
    settings = RerunSettings(repeats=args.repeats, repeat_s=args.repeat_s, clock=args.clock)
    started = time.monotonic()
    print(f"load average before: {load_average()} (1, 5, 15 min; {os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="devtrack-verdicts-") as tmp:
        root = Path(tmp) / "ws"
        ws, _ = init_workspace(root)
        refs = build(ws, root, args.size, args.base)
        refs = {label: ref for label, ref in refs.items() if label in chosen}
        thread_counts = [int(t) for t in args.threads.split(",")]
        if args.profile:  # the profile's own thread count, once
            thread_counts = [load_profile(args.profile, root).execution.threads]
        for threads in thread_counts:
            print(f"\n== {threads} thread(s){' on ' + args.profile if args.profile else ''}: "
                  f"MatMul chain {args.size}x{args.size}, baseline "
                  f"{args.base} layers, cap {args.repeats} repeats, {args.clock} clock ==")
            verify(ws, refs, args.profile or write_profile(root, threads, args.limit),
                   args.verify_repeats, args.verify_s)
            print(f"verdicts of {args.n} checks (A/A, +2%) and {n_others} (others) per case:")
            results = []
            for label, ref in refs.items():
                limit = case_limits.get(label, args.limit)
                profile = args.profile or write_profile(root, threads, limit)
                if args.profile:
                    limit = load_profile(profile, root).budgets.max_latency_regression_pct or 0
                n = args.n if label in MAIN_CASES else n_others
                if n > 0:
                    results.append(run_case(ws, label, ref, profile, limit, n, settings))
            print_table(threads, results)
        ws.close()
    print(f"load average after: {load_average()}")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
