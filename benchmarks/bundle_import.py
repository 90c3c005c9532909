"""How long ``devtrack import`` takes for a bundle with many runs, against its export and a
plain copy of the zip.

Builds a lab workspace: one real release (a small MLP, registered) and RUNS runs of it, each
with SAMPLES float32 latency samples, written with their bench events as devtrack writes them
(so ``audit verify`` is green; no measuring). Then, in one process, best of --repeat:

- ``export`` of the release with every run,
- a plain ``shutil.copy`` of the bundle (the floor: bytes moved, nothing checked),
- ``import`` into a fresh workspace (directory and manifest checked, every member hashed,
  rows and the one import event in one transaction),
- ``import`` of the same bundle again (everything present: nothing written),

checks ``audit verify`` on both ends, and prints runs/s and the ratios import/copy,
import/export and re-import/import.

Run: python benchmarks/bundle_import.py [--runs 100] [--samples 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devtrack.auditing import verify_audit
from devtrack.bench.protocol import samples_to_blob
from devtrack.bundles import export_bundle, import_bundle
from devtrack.core.audit_state import (
    run_fields_digest,
    samples_digest,
    snapshot_conditions_hash,
)
from devtrack.registry import RegisterRequest, register_release
from devtrack.workspace import init_workspace, open_workspace

PROFILES = ("big-core-1t", "ci-host", "phone-4t", "pi-4")
SNAPSHOT, ENVIRONMENT, DETAILS = (json.dumps({"text": letter * size}) for letter, size in
                                  (("s", 590), ("e", 370), ("d", 490)))


def build_lab(root: Path, model: Path, runs: int, samples: int) -> None:
    ws, _ = init_workspace(root)
    try:
        release = register_release(ws, RegisterRequest(model, "kws", "1.0"))
        rng = np.random.default_rng(0)
        store = ws.store
        with store.transaction():
            for i in range(runs):
                blob = samples_to_blob(rng.normal(1.0, 0.02, samples))
                ts = f"2024-01-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
                row = {"release_id": release.id, "profile": PROFILES[i % len(PROFILES)],
                       "profile_hash": "h", "profile_snapshot": SNAPSHOT, "status": "ok",
                       "conditions_hash": snapshot_conditions_hash(SNAPSHOT),
                       "started_at": ts, "finished_at": ts, "actor": "bench", "host": "lab",
                       "p50_ms": 1.0, "p90_ms": 1.1, "peak_rss_mb": 80.0, "samples": blob,
                       "warnings": "[]", "environment": ENVIRONMENT, "details": DETAILS}
                run = store.insert("runs", row)
                stored = store.one("SELECT * FROM runs WHERE id = ?", (run,))
                assert stored is not None
                store.append_event(
                    actor="bench", kind="bench", model="kws", version="1.0", ts=ts,
                    payload={"run": run, "profile": row["profile"], "status": "ok",
                             "p50_ms": 1.0, "peak_rss_mb": 80.0, "evaluation": None,
                             "samples_sha256": samples_digest(blob),
                             "fields_sha256": run_fields_digest(stored)})
    finally:
        ws.close()


def timed(func: object) -> float:
    t0 = time.perf_counter()
    func()  # type: ignore[operator]
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from devtrack.builders.onnx_models import build_mlp

    tmp = Path(tempfile.mkdtemp(prefix="devtrack-bundle-bench-"))
    try:
        model = tmp / "kws.onnx"
        build_mlp(model, in_features=64, hidden=(256,), classes=10, seed=0)
        build_lab(tmp / "lab", model, args.runs, args.samples)
        bundle = tmp / "kws.zip"
        exports, copies, imports, again = [], [], [], []
        with open_workspace(tmp / "lab") as lab:
            checked = verify_audit(lab)
            assert checked.ok, (checked.problem, checked.state[:3])
            for n in range(args.repeat):
                exports.append(timed(lambda: export_bundle(lab, ["kws@1.0"], bundle)))
                copies.append(timed(lambda: shutil.copy(bundle, tmp / "copy.zip")))
                init_workspace(tmp / f"team{n}")[0].close()
                with open_workspace(tmp / f"team{n}") as team:
                    result = None

                    def first(team=team) -> None:  # type: ignore[no-untyped-def]
                        nonlocal result
                        result = import_bundle(team, bundle)

                    imports.append(timed(first))
                    assert result is not None and result.runs_added == args.runs
                    again.append(timed(lambda team=team: import_bundle(team, bundle)))
                    assert verify_audit(team).ok
        size = bundle.stat().st_size
        exp, cp, imp, re = min(exports), min(copies), min(imports), min(again)
        print(f"bundle: 1 release, {args.runs} runs × {args.samples:,} samples, "
              f"{size / 1e6:,.1f} MB zip (best of {args.repeat})")
        print(f"  export                 {exp:7.3f} s")
        print(f"  copy of the zip        {cp:7.3f} s")
        print(f"  import (fresh)         {imp:7.3f} s  ({args.runs / imp:,.0f} runs/s)")
        print(f"  import again (no-op)   {re:7.3f} s")
        print(f"  import / copy          {imp / cp:7.1f}×")
        print(f"  import / export        {imp / exp:7.2f}×")
        print(f"  re-import / import     {re / imp:7.2f}×")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
