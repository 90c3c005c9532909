"""Many writers on one workspace: throughput, lost writes and the wait for the write lock.

Phase 1: --procs processes × --registers registers each (library calls, as a long-lived
client or the app makes them), spread over a few model lines that they open together, each
process with its own model file. Phase 2: --procs × --lifecycle operations alternating
``notes`` and ``deploy --force`` on those releases. Every process starts at a barrier.

For each phase it prints throughput, the per-operation time, the time each transaction
waited for the write lock (Store.last_lock_wait_s: the BEGIN IMMEDIATE), and lost writes:
operations that returned success but whose row or event is not in the database (must be 0),
plus operations that failed (e.g. "database is locked" past the busy timeout). Then the same
number of operations from one process, side by side, and the ratio of throughputs.

Run: python benchmarks/concurrency.py [--procs 8] [--registers 50] [--lifecycle 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LINES = 4  # model lines the registers share (each is opened by several processes at once)
PROFILES = ("ci-host", "big-core-1t", "phone-4t")


@dataclass
class Outcome:
    """One process's record: what succeeded (to look for in the database) and the times."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    op_s: list[float] = field(default_factory=list)
    lock_wait_s: list[float] = field(default_factory=list)


def _register_worker(root: str, model: str, proc: int, count: int, barrier: Any,
                     queue: Any) -> None:
    from devtrack.inspection import inspect_model
    from devtrack.registry import RegisterRequest, register_or_restore
    from devtrack.workspace import open_workspace

    os.environ["DEVTRACK_USER"] = f"writer{proc}"
    out = Outcome()
    with open_workspace(root) as ws:
        inspect_model(Path(model))  # imports onnx before the clock starts
        barrier.wait()
        for k in range(count):
            line, version = f"line{(proc + k) % LINES}", f"{proc}.{k}"
            started = time.perf_counter()
            try:
                register_or_restore(ws, RegisterRequest(file=Path(model), model=line,
                                                        version=version, notes="bench"),
                                    cwd=Path(root))
            except Exception as exc:  # counted, not fatal: the point is to see them
                out.failed.append(f"{line}@{version}: {exc}")
                continue
            out.op_s.append(time.perf_counter() - started)
            out.lock_wait_s.append(ws.store.last_lock_wait_s)
            out.done.append(f"{line}@{version}")
    queue.put(out)


def _lifecycle_worker(root: str, refs: list[str], proc: int, count: int, barrier: Any,
                      queue: Any) -> None:
    from devtrack import lifecycle
    from devtrack.profiles import load_profile
    from devtrack.workspace import open_workspace

    os.environ["DEVTRACK_USER"] = f"reviewer{proc}"
    out = Outcome()
    with open_workspace(root) as ws:
        for name in PROFILES:  # imports and parses before the clock starts
            load_profile(name, ws.root)
        barrier.wait()
        for k in range(count):
            ref = refs[(proc * count + k) % len(refs)]
            started = time.perf_counter()
            try:
                if k % 2 == 0:
                    text = f"notes by {proc} #{k}"
                    lifecycle.set_notes(ws, ref, text)
                    done = f"notes|{ref}|{text}"
                else:
                    profile = PROFILES[(proc + k) % len(PROFILES)]
                    deployment = lifecycle.deploy(ws, ref, profile, f"by {proc} #{k}",
                                                  force=True)
                    done = f"deploy|{deployment.id}"
            except Exception as exc:
                out.failed.append(f"{ref}: {exc}")
                continue
            out.op_s.append(time.perf_counter() - started)
            out.lock_wait_s.append(ws.store.last_lock_wait_s)
            out.done.append(done)
    queue.put(out)


def _run(target: Any, args_per_proc: list[tuple[Any, ...]]) -> tuple[float, Outcome]:
    """Start one process per argument tuple at a barrier; (wall seconds, merged outcome)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(len(args_per_proc) + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, queue))
             for args in args_per_proc]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    started = time.perf_counter()
    results = [queue.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join(timeout=60)
    merged = Outcome()
    for r in results:
        merged.done += r.done
        merged.failed += r.failed
        merged.op_s += r.op_s
        merged.lock_wait_s += r.lock_wait_s
    return wall, merged


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return sum(values)
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _lost(root: Path, out: Outcome) -> int:
    """Successful operations whose row or event is not in the database."""
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:
        releases = {f"{r['m']}@{r['v']}" for r in ws.store.query(
            "SELECT m.name AS m, r.version AS v FROM releases r JOIN models m "
            "ON m.id = r.model_id")}
        deployments = {str(r["id"]) for r in ws.store.query("SELECT id FROM deployments")}
        notes = {(f"{e['model']}@{e['version']}", json.loads(e["payload"])["new"])
                 for e in ws.store.events(kind="notes")}
    lost = 0
    for item in out.done:
        kind, _, rest = item.partition("|")
        if kind == "deploy":
            lost += rest not in deployments
        elif kind == "notes":
            ref, _, text = rest.partition("|")
            lost += (ref, text) not in notes
        else:
            lost += item not in releases
    return lost


def _report(label: str, wall: float, out: Outcome, lost: int) -> float:
    ops = len(out.done)
    rate = ops / wall if wall else float("nan")
    waits = [w * 1000 for w in out.lock_wait_s]
    times = [t * 1000 for t in out.op_s]
    print(f"  {label:<34} {ops:5d} ok {len(out.failed):3d} failed {lost:3d} lost  "
          f"{rate:7.1f} ops/s  op p50 {statistics.median(times):6.1f} ms p95 "
          f"{_p95(times):6.1f} ms  lock wait p50 {statistics.median(waits):6.2f} ms "
          f"p95 {_p95(waits):6.2f} ms max {max(waits):6.1f} ms")
    for failure in out.failed[:3]:
        print(f"      failed: {failure}")
    return rate


def _workspace(base: Path, name: str) -> Path:
    from devtrack.workspace import init_workspace

    root = base / name
    ws, _ = init_workspace(root)
    ws.close()
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=8, help="writer processes")
    parser.add_argument("--registers", type=int, default=50, help="registers per process")
    parser.add_argument("--lifecycle", type=int, default=20,
                        help="notes/deploy operations per process")
    args = parser.parse_args(argv)
    if min(args.procs, args.registers, args.lifecycle) < 1:
        parser.error("--procs, --registers and --lifecycle must be at least 1")
    from devtrack.builders.onnx_models import build_mlp

    base = Path(tempfile.mkdtemp(prefix="devtrack-concurrency-"))
    try:
        models = [str(build_mlp(base / f"m{i}.onnx", in_features=64, hidden=(64,),
                                classes=4, seed=i)) for i in range(args.procs)]
        print(f"{args.procs} processes × {args.registers} registers, then × "
              f"{args.lifecycle} notes/deploys, on one workspace (cpus: {os.cpu_count()})")
        rates = {}
        for label, procs in (("concurrent", args.procs), ("one process", 1)):
            root = _workspace(base, label.replace(" ", "-"))
            per = args.registers * args.procs // procs
            wall, out = _run(_register_worker,
                             [(str(root), models[i], i, per) for i in range(procs)])
            rates[("register", label)] = _report(f"register, {label}", wall, out,
                                                 _lost(root, out))
            refs = out.done
            per = args.lifecycle * args.procs // procs
            wall, out = _run(_lifecycle_worker, [(str(root), refs, i, per)
                                                 for i in range(procs)])
            rates[("lifecycle", label)] = _report(f"notes+deploy, {label}", wall, out,
                                                  _lost(root, out))
            from devtrack.auditing import verify_audit
            from devtrack.workspace import open_workspace

            with open_workspace(root) as ws:
                print(f"  audit verify after the {label} run: "
                      f"{'intact' if verify_audit(ws).ok else 'BROKEN'}")
        for phase in ("register", "lifecycle"):
            ratio = rates[(phase, "concurrent")] / rates[(phase, "one process")]
            print(f"  {phase}: {args.procs} processes reach {ratio:.2f}× the throughput "
                  "of one")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
