"""SQLite vs PostgreSQL side by side through the same store interface, and 8 concurrent
writers on PostgreSQL.

Both stores get the same seeded registry (models × releases × 4 profiles of runs with their
sample blobs). Then, interleaved in blocks (SQLite, PostgreSQL, SQLite, …) in one process:

- write cycles as ``register`` and ``bench`` do them: one transaction with the rows and their
  chained event (register: artifact + release + event; store a run: run row with an 8 KiB
  sample blob + event);
- reads the app and ``check`` make (a model line's release table, the runs of a model line on
  one profile, one release by version, a model's events).

Then WRITERS processes each run CYCLES register cycles on PostgreSQL at once: throughput, and
whether every event arrived in one intact chain (0 lost). PostgreSQL is a throwaway local
cluster (tests/pgserver.py) with its durable defaults (fsync on), as SQLite commits with
fsync; or ``--url`` for a server of your own (an empty database). Prints medians and ratios.

Usage: python benchmarks/store_backends.py [--releases 200] [--repeats 5] [--url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from devtrack.postgres.backend import open_postgres_store  # noqa: E402
from devtrack.store import create_store  # noqa: E402
from devtrack.store_contract import StoreBackend  # noqa: E402

PROFILES = ("cpu-1t", "cpu-4t", "pi5", "phone")
SAMPLES = bytes(8192)
WRITERS = 8
CYCLES = 40

_WRITER = """
import sys, time
from devtrack.postgres.backend import open_postgres_store
sys.path.insert(0, sys.argv[4])
from store_backends import register_cycle
store = open_postgres_store(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[5]) - time.time()))  # every writer starts together
start = time.time()
for n in range(int(sys.argv[3])):
    register_cycle(store, f"w{sys.argv[2]}", n)
print(start, time.time())
store.close()
"""


def register_cycle(store: StoreBackend, model: str, n: int) -> None:
    """What ``register`` writes: model (first time), artifact, release, event — one
    transaction."""
    with store.transaction():
        row = store.one("SELECT id FROM models WHERE name = ?", (model,))
        model_id = row["id"] if row else store.insert(
            "models", {"name": model, "task": "other", "created_at": "2026-01-01T00:00:00Z"})
        sha = hashlib.sha256(f"{model}@{n}".encode()).hexdigest()
        store.insert("artifacts", {"sha256": sha, "format": "onnx", "size_bytes": 1000,
                                   "created_at": "2026-01-01T00:00:00Z"})
        store.insert("releases", {
            "model_id": model_id, "version": str(n), "artifact_sha256": sha, "created_by": "b",
            "host": "h", "created_at": "2026-01-01T00:00:00Z", "devtrack_version": "0",
            "summary": '{"params": 1000, "quantization": "none"}'})
        store.append_event(actor="bench", kind="register", model=model, version=str(n),
                           payload={"sha256": sha})


def store_run_cycle(store: StoreBackend, release_id: int, profile: str) -> None:
    """What ``bench`` writes per measurement: one run row with its samples, and its event."""
    with store.transaction():
        run_id = store.insert("runs", {
            "release_id": release_id, "profile": profile, "profile_hash": "h",
            "profile_snapshot": "{}", "status": "ok", "started_at": "t", "finished_at": "t",
            "actor": "bench", "host": "h", "p50_ms": 1.5, "p90_ms": 1.7, "n": 2048,
            "samples": SAMPLES, "conditions_hash": "c"})
        store.append_event(actor="bench", kind="bench", model="seed0", version="0",
                           payload={"run": run_id})


def seed(store: StoreBackend, releases: int) -> None:
    for n in range(releases):
        register_cycle(store, f"seed{n % 4}", n)
    ids = [r["id"] for r in store.query("SELECT id FROM releases ORDER BY id")]
    with store.transaction():
        for release_id in ids:
            for profile in PROFILES:
                store.insert("runs", {
                    "release_id": release_id, "profile": profile, "profile_hash": "h",
                    "profile_snapshot": "{}", "status": "ok", "started_at": "t",
                    "finished_at": "t", "actor": "b", "host": "h", "p50_ms": 1.0, "n": 2048,
                    "samples": SAMPLES, "conditions_hash": "c"})


READS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "release table (model line)": (
        "SELECT r.id, r.version, r.status, r.created_at, a.format, a.size_bytes, "
        "p.version AS parent FROM releases r JOIN artifacts a ON a.sha256 = r.artifact_sha256 "
        "LEFT JOIN releases p ON p.id = r.parent_id JOIN models m ON m.id = r.model_id "
        "WHERE m.name = ? ORDER BY r.id", ("seed1",)),
    "runs of a line on a profile": (
        "SELECT runs.id, runs.release_id, runs.status, runs.p50_ms, runs.p90_ms, "
        "runs.conditions_hash FROM runs JOIN releases r ON r.id = runs.release_id "
        "JOIN models m ON m.id = r.model_id WHERE m.name = ? AND runs.profile = ?",
        ("seed1", "pi5")),
    "one release by version": (
        "SELECT r.*, m.name AS model FROM releases r JOIN models m ON m.id = r.model_id "
        "WHERE m.name = ? AND r.version = ?", ("seed2", "6")),
    "a model's events": ("SELECT * FROM events WHERE model = ? ORDER BY id", ("seed3",)),
}


def timed(action: Callable[[], object], repeat: int) -> float:
    """Milliseconds per call, over ``repeat`` calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - start) * 1000 / repeat


def side_by_side(stores: dict[str, StoreBackend], repeats: int) -> list[tuple[str, float, float]]:
    times: dict[str, dict[str, list[float]]] = {}
    release_ids = {name: store.one("SELECT MIN(id) AS id FROM releases")["id"]  # type: ignore
                   for name, store in stores.items()}
    for block in range(repeats):
        for name, store in stores.items():
            ops: dict[str, Callable[[], object]] = {
                f"{sql_name}": (lambda s=store, q=q: s.query(*q))
                for sql_name, q in READS.items()}
            counter = iter(range(10**6))
            ops["write: register cycle"] = lambda s=store, b=block, c=counter: register_cycle(
                s, f"new{b}", next(c))
            ops["write: store a run + event"] = lambda s=store, n=name: store_run_cycle(
                s, release_ids[n], "pi5")
            for op, action in ops.items():
                per = 20 if op.startswith("write") else 30
                times.setdefault(op, {}).setdefault(name, []).append(timed(action, per))
    return [(op, statistics.median(by["sqlite"]), statistics.median(by["postgres"]))
            for op, by in times.items()]


def concurrent_writers(url: str) -> tuple[float, float, int, bool]:
    """WRITERS processes × CYCLES register cycles at once: (seconds, cycles/s, lost, chain
    ok)."""
    store = open_postgres_store(url)
    before = len(store.events())
    store.close()
    start_at = time.time() + 3.0  # after every writer has imported and connected
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, url, str(w), str(CYCLES),
                               str(Path(__file__).resolve().parent), str(start_at)],
                              stdout=subprocess.PIPE,
                              text=True)
             for w in range(WRITERS)]
    outs = [p.communicate(timeout=600)[0].split() for p in procs]
    codes = [p.returncode for p in procs]
    # from the first writer's first cycle to the last one's end (process start-up excluded)
    spans = [(float(out[0]), float(out[1])) for out in outs if len(out) == 2]
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    store = open_postgres_store(url)
    try:
        arrived = len(store.events()) - before
        intact = store.verify_events() is None and all(c == 0 for c in codes)
    finally:
        store.close()
    expected = WRITERS * CYCLES
    return elapsed, expected / elapsed, expected - arrived, intact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway one)")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            url = args.url
        else:
            import os

            from pgserver import start_server

            server = start_server(Path(tmp), durable=True)
            os.environ["PGPASSFILE"] = str(server.passfile)
            url = server.url(server.fresh_database())
        try:
            stores: dict[str, StoreBackend] = {"sqlite": create_store(Path(tmp) / "d.db"),
                                               "postgres": open_postgres_store(url)}
            for store in stores.values():
                seed(store, args.releases)
            rows = side_by_side(stores, args.repeats)
            for store in stores.values():
                store.close()
            print(f"{args.releases} releases × {len(PROFILES)} profiles of runs; medians of "
                  f"{args.repeats} interleaved blocks")
            print(f"{'operation':32} {'SQLite ms':>10} {'PostgreSQL ms':>14} {'PG/SQLite':>10}")
            for op, lite, pg in rows:
                print(f"{op:32} {lite:10.3f} {pg:14.3f} {pg / lite:10.2f}")
            one_writer = 1000 / dict((op, pg) for op, _, pg in rows)["write: register cycle"]
            elapsed, rate, lost, intact = concurrent_writers(url)
            print(f"\n{WRITERS} concurrent writers × {CYCLES} register cycles on PostgreSQL: "
                  f"{elapsed:.2f} s, {rate:.0f} cycles/s (one writer alone: {one_writer:.0f}/s; "
                  f"{rate / one_writer:.2f}×), lost {lost}, "
                  f"chain {'intact' if intact else 'BROKEN'}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
