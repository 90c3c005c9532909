"""How long ``devtrack audit verify`` takes on a big workspace, and where the time goes.

Builds a workspace through the Store API (no measuring): RELEASES releases × 4 profiles, each
run with SAMPLES float32 latency samples (what a ~1 ms model leaves after a 20 s window),
every row written with its event as devtrack writes them (register with the digests of its
notes and fields, bench with the digests of its samples and fields, a check with its
report's digest, a deploy with its reason), and each release's artifact (ARTIFACT_KB of
random bytes) in the store. Then times, in one process, best of --repeat:

- the hash chain alone (``Store.verify_events``),
- chain + every table against the events, samples hashed (no files),
- ``audit verify --quick`` (the same, plus each stored file's presence and size),
- ``audit verify`` in full (the same, plus every stored file rehashed),

and prints events/s, runs/s, the samples' MB/s, the files' bytes/s and the full/quick ratio.
The files were just written, so they are read from the page cache: a cold disk is slower.

Run: python benchmarks/audit_verify.py [--releases 1000] [--samples 20000]
     [--artifact-kb 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devtrack.auditing import verify_audit
from devtrack.bench.protocol import samples_to_blob
from devtrack.core.audit_state import (
    release_fields_digest,
    run_fields_digest,
    samples_digest,
    text_digest,
)
from devtrack.workspace import Workspace, init_workspace, open_workspace

PROFILES = ("big-core-1t", "ci-host", "phone-4t", "pi-4")
# Stand-ins as long as the JSON texts a real run, check and release store (~0.5 KB each).
SNAPSHOT, ENVIRONMENT, DETAILS, REPORT, SUMMARY = (
    json.dumps({"text": letter * size}) for letter, size in
    (("s", 590), ("e", 370), ("d", 490), ("r", 480), ("m", 520)))


def build(root: Path, releases: int, samples: int,
          artifact_bytes: int) -> tuple[int, int, float]:
    """The workspace; returns (events, runs, MB of samples)."""
    ws, _ = init_workspace(root)
    rng = np.random.default_rng(0)
    blob_mb = samples * 4 / 1e6
    try:
        with ws.store.transaction():
            model_id = ws.store.insert("models", {"name": "big", "task": "classification",
                                                  "created_at": "2024-01-01T00:00:00Z"})
            for i in range(releases):
                _release(ws, model_id, i, samples, rng, artifact_bytes)
        events = len(ws.store.events())
    finally:
        ws.close()
    runs = releases * len(PROFILES)
    return events, runs, runs * blob_mb


def _store_artifact(ws: Workspace, content: bytes) -> str:
    """Write ``content`` where the store keeps it (no fsync: a benchmark, not a register)."""
    sha = hashlib.sha256(content).hexdigest()
    path = ws.artifacts.path_for(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sha


def _release(ws: Workspace, model_id: int, i: int, samples: int,
             rng: np.random.Generator, artifact_bytes: int) -> None:
    store, version, ts = ws.store, f"1.{i}", f"2024-01-01T00:{i % 60:02d}:00Z"
    content = version.encode() + rng.bytes(max(artifact_bytes - 8, 0))
    sha = _store_artifact(ws, content)
    store.insert("artifacts", {"sha256": sha, "format": "onnx", "size_bytes": len(content),
                               "created_at": ts})
    release = {
        "model_id": model_id, "version": version, "artifact_sha256": sha, "status": "candidate",
        "notes": "", "tags": "{}", "input_specs": "[]", "fills": "[]", "created_by": "bench",
        "host": "lab", "created_at": ts, "devtrack_version": "0", "summary": SUMMARY}
    rid = store.insert("releases", release)
    store.append_event(actor="bench", kind="register", model="big", version=version, ts=ts,
                       payload={"sha256": sha, "size_bytes": len(content), "format": "onnx",
                                "task": "classification", "notes_sha256": text_digest(""),
                                "fields_sha256": release_fields_digest(release)})
    for profile in PROFILES:
        blob = samples_to_blob(rng.normal(1.0, 0.02, samples))
        row = {
            "release_id": rid, "profile": profile, "profile_hash": "h",
            "profile_snapshot": SNAPSHOT, "status": "ok", "started_at": ts, "finished_at": ts,
            "actor": "bench", "host": "lab", "p50_ms": 1.0, "p90_ms": 1.1, "peak_rss_mb": 80.0,
            "samples": blob, "warnings": "[]", "environment": ENVIRONMENT, "details": DETAILS}
        run = store.insert("runs", row)
        store.append_event(actor="bench", kind="bench", model="big", version=version, ts=ts,
                           payload={"run": run, "profile": profile, "status": "ok",
                                    "p50_ms": 1.0, "peak_rss_mb": 80.0,
                                    "samples_sha256": samples_digest(blob),
                                    "fields_sha256": run_fields_digest(row)})
    check = store.insert("checks", {"release_id": rid, "profile": "ci-host",
                                    "profile_hash": "h", "passed": 1, "report": REPORT,
                                    "created_at": ts, "actor": "bench"})
    store.append_event(actor="bench", kind="check", model="big", version=version, ts=ts,
                       payload={"check": check, "profile": "ci-host", "passed": True,
                                "report_sha256": text_digest(REPORT)})
    store.conn.execute("UPDATE deployments SET ended_at = ? WHERE ended_at IS NULL", (ts,))
    dep = store.insert("deployments", {
        "model_id": model_id, "release_id": rid, "profile": "ci-host", "kind": "deploy",
        "deployed_at": ts, "deployed_by": "bench", "reason": "bench", "forced": 0,
        "check_id": check})
    store.append_event(actor="bench", kind="deploy", model="big", version=version, ts=ts,
                       reason="bench", payload={"profile": "ci-host", "deployment": dep,
                                                "forced": False, "check": check})


def best_of(repeat: int, func: object) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--artifact-kb", type=int, default=256,
                        help="size of each release's stored artifact (default 256 KB)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="devtrack-audit-bench-"))
    try:
        t0 = time.perf_counter()
        events, runs, mb = build(tmp / "ws", args.releases, args.samples,
                                 args.artifact_kb * 1024)
        print(f"workspace: {args.releases} releases, {runs} runs with {args.samples:,} samples "
              f"each ({mb:,.0f} MB), {events:,} events, {args.releases} artifacts of "
              f"{args.artifact_kb:,} KB; built in {time.perf_counter() - t0:.1f} s")
        with open_workspace(tmp / "ws") as ws:
            result = verify_audit(ws)
            assert result.ok, (result.problem, result.state[:3], result.files)
            chain = best_of(args.repeat, ws.store.verify_events)
            tables = best_of(args.repeat, lambda: verify_audit(ws, files=False))
            quick = best_of(args.repeat, lambda: verify_audit(ws, quick=True))
            full = best_of(args.repeat, lambda: verify_audit(ws))
            assert result.files is not None
            read = result.files.bytes_read
        print(f"  hash chain alone        {chain:6.2f} s  ({events / chain:,.0f} events/s)")
        print(f"  chain + tables          {tables:6.2f} s  ({runs / tables:,.0f} runs/s, "
              f"{mb / tables:,.0f} MB/s of samples)")
        print(f"  verify --quick          {quick:6.2f} s  (+ {args.releases:,} files stat'ed)")
        print(f"  verify (full)           {full:6.2f} s  ({read / 1e6:,.0f} MB of files read: "
              f"{read / full / 1e6:,.0f} MB/s overall, "
              f"{read / max(full - quick, 1e-9) / 1e6:,.0f} MB/s for the files alone)")
        print(f"  tables / chain          {tables / chain:6.2f}×")
        print(f"  full / quick            {full / quick:6.2f}×")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
