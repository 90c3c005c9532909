"""devtrack db copy: throughput of a SQLite workspace copied into PostgreSQL, side by side with
the same rows inserted one by one through the store's ``insert`` and with reading them alone.

The workspace is made for real: two releases registered, benched with an evaluation on a
tiny profile, approved, checked, deployed and compared side by side (real onnxruntime
workers). Its measured runs — every sample blob included — are then copied within the SQLite
file until it holds RUNS runs. Each repeat, interleaved:

- ``db copy``: ``dbcopy.copy_database`` into a fresh empty database (binary COPY per table,
  one transaction, chain verified on the copy);
- ``row inserts``: the same rows, same order, same single transaction, written with
  ``PostgresStore.insert`` one statement per row (what a copy through the library's usual
  write path would cost);
- ``read only``: streaming every row out of SQLite, which both include (the floor).

PostgreSQL is a throwaway local cluster (tests/pgserver.py) with its durable defaults (fsync
on), or ``--url`` (a server of your own: an empty database per repeat is created next to it
with CREATE DATABASE). Prints medians and ratios, and the copy's peak Python memory.

Usage: python benchmarks/db_copy.py [--runs 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from devtrack.dbcopy import copy_database, copy_order  # noqa: E402
from devtrack.postgres.backend import open_postgres_store  # noqa: E402
from devtrack.workspace import DOT_DIR, open_workspace  # noqa: E402

TINY_PROFILE = """
name = "tiny"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 3
min_runs = 20
min_time_s = 0.1
max_time_s = 0.5
target_rel_ci = 0.05
[budgets]
latency_p90_ms = 1000.0
"""


def build_workspace(base: Path, runs: int) -> Path:
    """A real workspace (every table filled by the CLI), its runs then copied up to ``runs``."""
    from devtrack.builders.onnx_models import build_mlp
    from devtrack.cli import main

    for seed in (0, 1):
        build_mlp(base / f"m{seed}.onnx", in_features=16, hidden=(64,), classes=4, seed=seed)
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    np.savez(base / "eval.npz", input=x, labels=np.arange(64) % 4)
    root = base / "ws"
    assert main(["init", str(root)]) == 0
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    for step in (["dataset", "add", base / "eval.npz", "--name", "eval"],
                 ["register", base / "m0.onnx", "-m", "kws", "-v", "1.0", "--notes", "a"],
                 ["register", base / "m1.onnx", "-m", "kws", "-v", "1.1", "--parent", "1.0",
                  "--notes", "b"],
                 ["bench", "kws@1.0", "kws@1.1", "--profile", "tiny", "--eval", "eval"],
                 ["promote", "kws@1.0", "--to", "approved", "--reason", "ok"],
                 ["check", "kws@1.0", "--profile", "tiny", "--no-rerun"],
                 ["deploy", "kws@1.0", "--profile", "tiny", "--reason", "first"],
                 ["compare", "kws@1.0", "kws@1.1", "--profile", "tiny", "--rerun",
                  "--repeats", "4"]):
        code = main([str(a) for a in [*step, "-w", root]])
        assert code == 0, (step, code)
    conn = sqlite3.connect(root / DOT_DIR / "devtrack.db")
    columns = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(runs)") if r[1] != "id")
    while (have := conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) < runs:
        conn.execute(f"INSERT INTO runs ({columns}) SELECT {columns} FROM runs ORDER BY id "
                     f"LIMIT {runs - have}")
    conn.commit()
    conn.close()
    return root


def row_inserts(root: Path, url: str) -> float:
    """Every row written by ``insert``, one statement each, in one transaction: seconds."""
    ws = open_workspace(root)
    target = open_postgres_store(url)
    started = time.perf_counter()
    try:
        with ws.store.read_snapshot(), target.transaction():
            shapes = ws.store.tables()
            for name in copy_order(shapes):
                shape = shapes[name]
                for row in ws.store.stream_rows(name, shape):
                    target.insert(name, dict(zip(shape.columns, row, strict=True)))
            target.advance_identities()
    finally:
        target.close()
        ws.close()
    return time.perf_counter() - started


def read_only(root: Path) -> float:
    ws = open_workspace(root)
    started = time.perf_counter()
    try:
        with ws.store.read_snapshot():
            shapes = ws.store.tables()
            for name in copy_order(shapes):
                for _ in ws.store.stream_rows(name, shapes[name]):
                    pass
    finally:
        ws.close()
    return time.perf_counter() - started


def db_copy(root: Path, url: str) -> tuple[float, int]:
    ws = open_workspace(root)
    try:
        result = copy_database(ws, url)
    finally:
        ws.close()
    return result.seconds, result.total_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from pgserver import start_server

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = start_server(base, durable=True)
        os.environ["PGPASSFILE"] = str(server.passfile)
        try:
            started = time.perf_counter()
            root = build_workspace(base, args.runs)
            built = time.perf_counter() - started
            db_bytes = (root / DOT_DIR / "devtrack.db").stat().st_size
            times: dict[str, list[float]] = {"db copy": [], "row inserts": [], "read only": []}
            rows = 0
            for _ in range(args.repeats):
                seconds, rows = db_copy(root, server.url(server.fresh_database()))
                times["db copy"].append(seconds)
                times["row inserts"].append(row_inserts(root, server.url(
                    server.fresh_database())))
                times["read only"].append(read_only(root))
            tracemalloc.start()
            db_copy(root, server.url(server.fresh_database()))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        finally:
            server.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"workspace: {args.runs:,} runs ({rows:,} rows in all; runs copied from real bench "
          f"runs with their samples), SQLite file {db_bytes / 1e6:.1f} MB; built in "
          f"{built:.1f} s")
    print(f"medians of {args.repeats} interleaved repeats, PostgreSQL 15 local, fsync on")
    print(f"{'path':14} {'seconds':>8} {'rows/s':>10} {'runs/s':>9} {'MB/s':>7}")
    for name, seconds in median.items():
        print(f"{name:14} {seconds:8.3f} {rows / seconds:10,.0f} {args.runs / seconds:9,.0f} "
              f"{db_bytes / 1e6 / seconds:7.1f}")
    print(f"row inserts / db copy: {median['row inserts'] / median['db copy']:.2f}x as long; "
          f"db copy / read only: {median['db copy'] / median['read only']:.2f}x")
    print(f"db copy peak Python memory (tracemalloc): {peak / 1e6:.1f} MB for a "
          f"{db_bytes / 1e6:.1f} MB database")


if __name__ == "__main__":
    main()
