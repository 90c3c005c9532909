"""How fast the review app paints a big workspace, and how fast the CLI starts.

Builds a workspace with 1,000 releases × 4 profiles (4,000 runs with samples and accuracy,
5,000 audit events; inserted through the Store API, no measuring), then prints:

- first paint of the releases screen: in a fresh process from interpreter start (what a
  user waits for), and in-process once the imports are done (target < 1 s);
- switching model lines and opening a release, keypress to painted screen (< 100 ms);
- ``devtrack --help`` and ``devtrack releases`` start-up against ``python -c "import rich"``
  (target: within 4×).

With ``--postgres`` the same workspace is built a second time on PostgreSQL (a throwaway
local cluster, tests/pgserver.py, fsync on; or ``--postgres URL``, an empty database of your
own) and the app's timings are taken on both backends in the same run, with the ratio
PostgreSQL / SQLite of each median (the < 1 s first-paint target holds for both).

Run: python benchmarks/tui_startup.py [--releases 1000] [--repeat 5] [--keep DIR]
         [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.protocol import samples_to_blob
from devtrack.benchmarking import BenchOverrides
from devtrack.profiles import load_profile
from devtrack.workspace import Workspace, init_workspace

PROFILES = {
    "big-core-1t": "[budgets]\nlatency_p90_ms = 2.0\npeak_memory_mb = 120.0\n"
                   "max_latency_regression_pct = 5.0\n",
    "ci-host": "[execution]\nthreads = 2\n[budgets]\nmodel_size_mb = 50.0\n",
    "phone-4t": "[execution]\nthreads = 4\n[budgets]\nlatency_p90_ms = 3.0\n",
    "pi-4": "[execution]\nthreads = 4\n[budgets]\npeak_memory_mb = 200.0\n",
}
SUMMARY = json.dumps({
    "format": "onnx", "inputs": [{"name": "x", "shape": [1, 64], "dtype": "float32"}],
    "outputs": [{"name": "y", "shape": [1, 10], "dtype": "float32"}],
    "ops": {"MatMul": 3, "Add": 3, "Relu": 2, "Softmax": 1}, "params": 12_000,
    "weight_dtypes": {"float32": 12_000}, "quantization": "none", "opset": "ai.onnx:17",
    "producer": "bench", "extra": {},
})
TARGET_PAINT_S = 1.0
TARGET_INTERACTION_S = 0.1
TARGET_CLI_RATIO = 4.0


def _ts(i: int) -> str:
    return f"2024-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z"


def build_workspace(root: Path, releases: int) -> None:
    """A big model line ("big", ``releases`` releases) and a small one ("small", 50)."""
    ws, _ = init_workspace(root)
    (root / "device_profiles").mkdir(exist_ok=True)
    for name, body in PROFILES.items():
        (root / "device_profiles" / f"{name}.toml").write_text(
            f'name = "{name}"\n{body}', encoding="utf-8")
    profiles = {n: BenchOverrides().apply(load_profile(n, root)) for n in PROFILES}
    rng = np.random.default_rng(0)
    try:
        with ws.store.transaction():
            dataset = ws.store.insert("datasets", {
                "name": "val", "sha256": "0" * 64, "task": "classification", "samples": 500,
                "arrays": "{}", "has_labels": 1, "source_name": "val.npz",
                "created_at": _ts(0), "created_by": "bench"})
            for model, count in (("big", releases), ("small", 50)):
                _model(ws, model, count, profiles, dataset, rng)
    finally:
        ws.close()


def _model(ws: Workspace, model: str, count: int, profiles: dict[str, Any], dataset: int,
           rng: np.random.Generator) -> None:
    store = ws.store
    model_id = store.insert("models", {"name": model, "task": "classification",
                                       "created_at": _ts(0)})
    previous = None
    for i in range(count):
        version = f"1.{i // 100}.{i % 100}"
        sha = hashlib.sha256(f"{model}{version}".encode()).hexdigest()
        store.insert("artifacts", {"sha256": sha, "format": "onnx",
                                   "size_bytes": 40_000 + i, "created_at": _ts(i)})
        rid = store.insert("releases", {
            "model_id": model_id, "version": version, "artifact_sha256": sha,
            "parent_id": previous, "status": ("candidate", "approved", "rejected")[i % 3],
            "notes": f"build {i}", "tags": "{}", "input_specs": "[]", "fills": "[]",
            "created_by": "bench", "host": "lab", "created_at": _ts(i),
            "devtrack_version": "0", "summary": SUMMARY})
        store.append_event(actor="bench", kind="register", model=model, version=version,
                           payload={"sha256": sha}, ts=_ts(i))
        for name, profile in profiles.items():
            samples = rng.normal(1.0 + i * 0.001, 0.02, 200).astype("<f4")
            p50 = float(np.median(samples))
            run = store.insert("runs", {
                "release_id": rid, "profile": name, "profile_hash": profile.hash,
                "profile_snapshot": "{}", "conditions_hash": profile.conditions_hash,
                "status": "ok", "started_at": _ts(i),
                "finished_at": _ts(i), "actor": "bench", "host": "lab", "n": 200,
                "p50_ms": p50, "p90_ms": float(np.percentile(samples, 90)),
                "p99_ms": float(np.percentile(samples, 99)), "mean_ms": float(samples.mean()),
                "peak_rss_mb": 80.0 + (i % 7), "samples": samples_to_blob(samples),
                "warnings": "[]", "environment": "{}"})
            store.insert("evaluations", {
                "run_id": run, "dataset_id": dataset, "task": "classification",
                "metrics": "{}", "accuracy": 0.9 + (i % 10) / 1000, "nonfinite": 0,
                "created_at": _ts(i)})
            store.append_event(actor="bench", kind="bench", model=model, version=version,
                               payload={"run": run, "profile": name, "p50_ms": p50},
                               ts=_ts(i))
        previous = rid
    store.insert("deployments", {
        "model_id": model_id, "release_id": previous, "profile": "ci-host", "kind": "deploy",
        "deployed_at": _ts(1), "deployed_by": "bench", "reason": "bench", "forced": 1})


# -- the app ----------------------------------------------------------------------------------

COLD_PAINT = r"""
import asyncio, sys, time
start = float(sys.argv[2])
from devtrack.tui.app import create_app
from devtrack.tui.widgets.nav_table import NavTable

async def main():
    app = create_app(sys.argv[1], model="big")
    painted = []

    def frame():
        screen = app.screen
        if not painted and type(screen).__name__ == "ReleasesScreen":
            if screen.query(NavTable) and screen.query_one(NavTable).row_count:
                painted.append(time.time() - start)

    app.post_display_hook = frame
    async with app.run_test(size=(120, 35)) as pilot:
        while not painted:
            await pilot.pause(0.01)
    print(painted[0])

asyncio.run(main())
"""


def cold_first_paint(root: Path) -> float:
    """A fresh interpreter: imports, open the workspace, query, build and paint the table."""
    done = subprocess.run([sys.executable, "-c", COLD_PAINT, str(root), repr(time.time())],
                          capture_output=True, text=True, check=True, env=command_env())
    return float(done.stdout.strip().splitlines()[-1])


class Frames:
    """Timestamps of the frames the app renders (``post_display_hook``), with a probe of
    what each frame showed; latency = key press to the first frame showing the result."""

    def __init__(self, app: Any, probe: Callable[[], Any]) -> None:
        self.seen: list[tuple[float, Any]] = []
        app.post_display_hook = lambda: self.seen.append((time.perf_counter(), probe()))

    async def latency(self, pilot: Any, key: str, shows: Callable[[Any], bool],
                      timeout: float = 10.0) -> float:
        await pilot.pause()
        self.seen.clear()
        started = time.perf_counter()
        await pilot.press(key)
        while time.perf_counter() - started < timeout:
            hit = next((t for t, state in self.seen if shows(state)), None)
            if hit is not None:
                await pilot.pause()
                return hit - started
            await pilot.pause(0.005)
        raise TimeoutError(f"no frame after {key!r} showed the expected screen")


async def in_app_timings(root: Path, repeat: int) -> dict[str, list[float]]:
    from devtrack.tui.app import create_app
    from devtrack.tui.widgets.nav_table import NavTable

    out: dict[str, list[float]] = {key: [] for key in
                                   ("paint", "switch", "open", "back", "reopen")}
    for _ in range(repeat):
        gc.collect()  # the previous round's app is garbage: do not bill this round for it
        started = time.perf_counter()
        app = create_app(root, model="big")

        def probe(app: Any = app) -> tuple[str, Any, int]:
            screen = app.screen
            tables = screen.query(NavTable)
            table = tables.first() if tables else None
            return (type(screen).__name__, getattr(screen, "model", None),
                    table.row_count if table else 0)

        frames = Frames(app, probe)
        async with app.run_test(size=(120, 35)) as pilot:
            while not any(s[0] == "ReleasesScreen" and s[2] for _, s in frames.seen):
                await pilot.pause(0.005)
            first = next(t for t, s in frames.seen if s[0] == "ReleasesScreen" and s[2])
            out["paint"].append(first - started)
            await pilot.press("h")
            for key, model in (("j", "small"), ("k", "big")):
                out["switch"].append(await frames.latency(
                    pilot, key, lambda s, model=model: s[1] == model and s[2] > 0))
            await pilot.press("l", "G")  # the last release: every row is really there
            out["open"].append(await frames.latency(
                pilot, "enter", lambda s: s[0] == "ReleaseDetailScreen"))
            out["back"].append(await frames.latency(
                pilot, "escape", lambda s: s[0] == "ReleasesScreen"))
            for _ in range(3):  # the detail screen is built once, then reused
                await pilot.press("k")
                out["reopen"].append(await frames.latency(
                    pilot, "enter", lambda s: s[0] == "ReleaseDetailScreen"))
                await frames.latency(pilot, "escape", lambda s: s[0] == "ReleasesScreen")
    return out


# -- the CLI ----------------------------------------------------------------------------------

def command_env() -> dict[str, str]:
    """The environment of a user's shell: bytecode is cached as after any pip install.
    (With PYTHONDONTWRITEBYTECODE set, as on some CI images, every run would recompile
    devtrack's own modules — ~15 ms that no installed copy pays.)"""
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_command(argv: list[str], cwd: Path, repeat: int) -> float:
    """Median wall time of a command (the first run is a discarded warm-up that also writes
    the bytecode cache)."""
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True, env=command_env())
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def devtrack_argv() -> list[str]:
    script = Path(sys.executable).parent / "devtrack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "devtrack"]


def small_workspace(root: Path) -> None:
    """A few releases, for start-up time without a thousand rows to print."""
    build_workspace(root, releases=5)


# -- report -----------------------------------------------------------------------------------

def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def report(label: str, values: list[float], target: float | None) -> None:
    if os.environ.get("BENCH_VERBOSE"):
        print("   ", [round(v * 1000, 1) for v in values])
    worst, median = max(values), statistics.median(values)
    verdict = ""
    if target is not None:
        verdict = "  ok" if worst < target else f"  OVER the {target * 1000:.0f} ms target"
    print(f"  {label:<44} median {_ms(median)}  worst {_ms(worst)}{verdict}")


def app_timings(root: Path, repeat: int) -> tuple[list[float], dict[str, list[float]]]:
    """The app's first paint (fresh process, in process) and interactions, reported."""
    cold = [cold_first_paint(root) for _ in range(repeat)]
    report("first paint, fresh process (incl. imports)", cold, TARGET_PAINT_S)
    timings = asyncio.run(in_app_timings(root, repeat))
    report("first paint, in process", timings["paint"], TARGET_PAINT_S)
    report("switch model line (1,000 ↔ 50 releases)", timings["switch"], TARGET_INTERACTION_S)
    report("open a release (enter → detail painted)", timings["open"], TARGET_INTERACTION_S)
    report("open another release (detail screen reused)", timings["reopen"],
           TARGET_INTERACTION_S)
    report("back to the table (esc)", timings["back"], TARGET_INTERACTION_S)
    return cold, timings


def postgres_app_timings(tmp: Path, url: str, releases: int,
                         repeat: int) -> tuple[list[float], dict[str, list[float]]]:
    """The same workspace on PostgreSQL (``url``, or a throwaway cluster when empty), timed
    as on SQLite; the cluster is stopped after."""
    server = None
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pgserver import start_server

        (tmp / "pg").mkdir(exist_ok=True)
        server = start_server(tmp / "pg", durable=True)
        os.environ["PGPASSFILE"] = str(server.passfile)
        url = server.url(server.fresh_database())
    os.environ["DEVTRACK_DATABASE_URL"] = url  # the app and the fresh processes read it
    try:
        root = tmp / "big-pg"
        t0 = time.perf_counter()
        build_workspace(root, releases)
        print(f"\nreview app (120×35, headless), PostgreSQL (workspace built in "
              f"{time.perf_counter() - t0:.1f} s)")
        return app_timings(root, repeat)
    finally:
        os.environ.pop("DEVTRACK_DATABASE_URL", None)
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    parser.add_argument("--postgres", nargs="?", const="", metavar="URL",
                        help="also time the app on PostgreSQL (a throwaway cluster, or URL)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="devtrack-tui-bench-"))
    root = args.keep or tmp / "big"
    if root.exists():
        shutil.rmtree(root)
    try:
        t0 = time.perf_counter()
        build_workspace(root, args.releases)
        built = time.perf_counter() - t0
        print(f"workspace: {args.releases} releases × {len(PROFILES)} profiles "
              f"(+ a 50-release line), {args.releases * len(PROFILES)} runs, built in "
              f"{built:.1f} s\n")
        print("review app (120×35, headless), SQLite")
        cold, timings = app_timings(root, args.repeat)
        if args.postgres is not None:
            pg_cold, pg_timings = postgres_app_timings(tmp, args.postgres, args.releases,
                                                       args.repeat)
            print("\nPostgreSQL / SQLite, medians")
            for label, a, b in [("first paint, fresh process", cold, pg_cold),
                                *[(key, timings[key], pg_timings[key]) for key in timings]]:
                ratio = statistics.median(b) / statistics.median(a)
                print(f"  {label:<44} {ratio:5.2f}×")
            cold += pg_cold
            for key in timings:
                timings[key] += pg_timings[key]

        small = tmp / "small"
        small_workspace(small)
        print("\nCLI start-up (median of", args.repeat, "after a warm-up)")
        rich = time_command([sys.executable, "-c", "import rich"], small, args.repeat)
        base = time_command([sys.executable, "-c", "pass"], small, args.repeat)
        print(f"  {'python -c pass':<44} {_ms(base)}")
        yardstick = 'python -c "import rich"'
        print(f"  {yardstick:<44} {_ms(rich)}  (the yardstick)")
        worst_ratio = 0.0
        for label, cmd, cwd in (("devtrack --help", ["--help"], small),
                                ("devtrack releases (5 releases)", ["releases"], small),
                                ("devtrack releases (1,050 releases)", ["releases"], root)):
            took = time_command(devtrack_argv() + cmd, cwd, args.repeat)
            ratio = took / rich
            target = cwd is small
            if target:
                worst_ratio = max(worst_ratio, ratio)
            note = (f"{ratio:4.2f}× import rich" + (
                "" if not target else "  ok" if ratio <= TARGET_CLI_RATIO
                else f"  OVER {TARGET_CLI_RATIO:g}×"))
            print(f"  {label:<44} {_ms(took)}  {note}")
        ok = (max(cold + timings["paint"]) < TARGET_PAINT_S
              and max(timings["switch"] + timings["open"] + timings["reopen"])
              < TARGET_INTERACTION_S
              and worst_ratio <= TARGET_CLI_RATIO)
        print(f"\n{'all targets met' if ok else 'some targets missed'}")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
