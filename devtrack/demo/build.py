"""Build the demo workspace: train, register, evaluate, benchmark, check and deploy for real."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.errors import UsageError

DEMO_PROFILES = ("ci-host", "big-core-1t")
DATASET = "digits-test"


@dataclass
class DemoResult:
    """What the demo built, for the closing summary and ``--json``."""

    workspace: Path
    model: str
    releases: list[dict[str, Any]] = field(default_factory=list)
    deployed: dict[str, str] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": str(self.workspace), "model": self.model,
                "releases": self.releases, "deployed": self.deployed,
                "checks": self.checks, "seconds": round(self.seconds, 1)}


def check_demo_target(root: Path) -> None:
    """Refuse a folder that already holds a workspace: the demo never touches real work."""
    from devtrack.workspace import DOT_DIR
    from devtrack.workspace_config import ARTIFACTS_VARIABLE, DATABASE_VARIABLE

    for variable in (DATABASE_VARIABLE, ARTIFACTS_VARIABLE):
        if os.environ.get(variable, "").strip():
            raise UsageError(f"${variable} is set: the demo builds a workspace of its own and "
                             "never writes to a team's database or artifact store; unset it "
                             f"for the demo (env -u {variable} devtrack demo)")
    if (root / DOT_DIR).exists():
        raise UsageError(f"{root} already holds a devtrack workspace; pass a new folder "
                         "(devtrack demo DIR) or remove it first")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder; pass a new folder")


def build_demo(directory: Path, say: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Create a workspace in ``directory`` holding a believable, fully measured history."""
    from devtrack.benchmarking import BenchOverrides, plan, run_measurement
    from devtrack.core.units import format_latency
    from devtrack.datasets import add_dataset, set_default_dataset
    from devtrack.demo.digits import split
    from devtrack.demo.models import MODEL, build_history, config_path, eval_arrays
    from devtrack.gate import check_release
    from devtrack.lifecycle import deploy, promote
    from devtrack.pairing import RerunSettings
    from devtrack.profiles import load_profile
    from devtrack.registry import RegisterRequest, get_release, register_release
    from devtrack.workspace import init_workspace

    started = time.monotonic()
    root = directory.expanduser().resolve()
    check_demo_target(root)
    ws, _ = init_workspace(root)
    result = DemoResult(root, MODEL)
    try:
        say("training a digits classifier with numpy and exporting four builds")
        data = split()
        builds = build_history(data, root / "builds")
        data_file = root / "builds" / "digits-test.npz"
        np.savez(data_file, **eval_arrays(data))  # type: ignore[arg-type]

        for build in builds:
            release = register_release(ws, RegisterRequest(
                file=build.file, model=MODEL, version=build.version, parent=build.parent,
                notes=build.notes, data_version=build.data_version,
                config_file=config_path(build), run_id=build.run_id,
                tags=[f"{k}={v}" for k, v in build.tags.items()], task="classification",
            ))
            say(f"registered {release.ref} ({release.format}, {release.size_bytes:,} bytes, "
                f"{release.summary.quantization})")
        add_dataset(ws, data_file, DATASET, task="classification")
        set_default_dataset(ws, MODEL, DATASET)
        say(f"added dataset {DATASET} ({len(data.y_test)} held-out digits) as the default")

        releases = [get_release(ws, f"{MODEL}@{b.version}") for b in builds]
        profiles = [load_profile(name, root) for name in DEMO_PROFILES]
        overrides = BenchOverrides()
        measurements, _ = plan(releases, profiles, overrides, ws=ws)
        for i, m in enumerate(measurements, 1):
            run = run_measurement(ws, m, overrides)
            figure = (f"p50 {format_latency(run['p50_ms'])}, accuracy "
                      f"{run.get('accuracy', 0):.3f}"
                      if run["status"] == "ok" else run["status"])
            say(f"[{i}/{len(measurements)}] measured {m.release.ref} on {m.profile.name}: "
                f"{figure}")

        rerun = RerunSettings(repeats=4, repeat_s=0.5)
        first, quantized, _tflite, regressed = (f"{MODEL}@{b.version}" for b in builds)
        promote(ws, first, "approved", "Reviewed: accuracy and latency meet the launch bar.")
        for profile in DEMO_PROFILES:
            report = check_release(ws, first, profiles=[profile], rerun=False)
            result.checks[f"{first} on {profile}"] = report.passed
            if report.passed:
                deploy(ws, first, profile, "Initial launch on this device class.")
        promote(ws, quantized, "approved", "int8 build: smaller and faster, same accuracy.")
        report = check_release(ws, quantized, profiles=["big-core-1t"], settings=rerun)
        result.checks[f"{quantized} on big-core-1t"] = report.passed
        if report.passed:
            deploy(ws, quantized, "big-core-1t", "Ship the int8 build to single-core phones.")
        say(f"checked and deployed: {first} on both profiles"
            + (f", {quantized} on big-core-1t" if report.passed else ""))
        report = check_release(ws, regressed, profiles=["big-core-1t"], settings=rerun)
        result.checks[f"{regressed} on big-core-1t"] = report.passed
        if not report.passed:
            promote(ws, regressed, "rejected", "devtrack check failed: " + "; ".join(
                item.message for _, item in report.failures())[:300])
        say(f"checked {regressed}: " + ("passed" if report.passed else "failed, rejected"))

        from devtrack.lifecycle import current_deployments

        result.deployed = {p: d.version for p, d in current_deployments(ws, MODEL).items()}
        result.releases = [get_release(ws, f"{MODEL}@{b.version}").to_list_dict()
                           for b in builds]
    finally:
        ws.close()
    result.seconds = time.monotonic() - started
    return result
