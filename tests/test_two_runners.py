"""Done when (issue 12): two empty folders pointed at one PostgreSQL database and one shared
artifact directory act as two CI runners of one team, through the real CLI in subprocesses:
the README's CI recipe ("In CI: a team shares one registry"), step for step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from devtrack.workspace_config import ARTIFACTS_VARIABLE, DATABASE_VARIABLE

TEAM_PROFILE = """
name = "ci-runner"
description = "the team's CI runners"
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
max_latency_regression_pct = 25.0
"""
TIMEOUT_S = 180


def _team_repo(tmp_path: Path) -> Path:
    """The team's repository: its device_profiles/ (what every runner checks out)."""
    from devtrack.profiles import copy_shipped_profiles

    repo = tmp_path / "repo"
    copy_shipped_profiles(repo / "device_profiles")
    (repo / "device_profiles" / "ci-runner.toml").write_text(TEAM_PROFILE)
    return repo


def _runner(tmp_path: Path, repo: Path, name: str, database: str,
            artifacts: Path) -> tuple[Path, dict[str, str]]:
    """An empty folder holding a checkout of device_profiles/, its own cache, the env."""
    folder = tmp_path / name
    shutil.copytree(repo / "device_profiles", folder / "device_profiles")
    env = {**os.environ, DATABASE_VARIABLE: database, ARTIFACTS_VARIABLE: str(artifacts),
           "XDG_CACHE_HOME": str(tmp_path / f"{name}-cache"), "DEVTRACK_USER": name,
           "TMPDIR": str(tmp_path / f"{name}-tmp")}
    env.pop("DEVTRACK_WORKSPACE", None)
    (tmp_path / f"{name}-tmp").mkdir()
    return folder, env


def _devtrack(runner: tuple[Path, dict[str, str]], *args: object,
              expect: int = 0) -> subprocess.CompletedProcess[str]:
    folder, env = runner
    result = subprocess.run([sys.executable, "-m", "devtrack", *map(str, args)], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == expect, (args, result.stdout, result.stderr)
    return result


def test_two_runners_share_one_registry(tmp_path: Path, pg_url: str, mlp_onnx: Path,
                                        mlp_onnx_b: Path) -> None:
    repo = _team_repo(tmp_path)
    shared = tmp_path / "shared-artifacts"
    shared.mkdir()
    one = _runner(tmp_path, repo, "runner-1", pg_url, shared)
    two = _runner(tmp_path, repo, "runner-2", pg_url, shared)

    # Runner 1: registers the first build, benches and checks it, and deploys it.
    _devtrack(one, "register", mlp_onnx, "-m", "kws", "-v", "1.0", "--notes", "first build")
    _devtrack(one, "bench", "kws@1.0", "--profile", "ci-runner")
    _devtrack(one, "check", "kws@1.0", "--profile", "ci-runner")
    _devtrack(one, "promote", "kws@1.0", "--to", "approved", "--reason", "review")
    _devtrack(one, "deploy", "kws@1.0", "--profile", "ci-runner", "--reason", "release 1")

    # Runner 2, a fresh folder: the deployed release is its baseline.
    history = json.loads(_devtrack(two, "history", "kws", "--json").stdout)
    assert [(d["version"], d["deployed_by"]) for d in history] == [("1.0", "runner-1")]
    _devtrack(two, "register", mlp_onnx_b, "-m", "kws", "-v", "1.1", "--parent", "deployed",
              "--notes", "retrained")
    shown = json.loads(_devtrack(two, "show", "kws@1.1", "--json").stdout)
    assert shown["parent"] == "1.0"  # the release runner 1 deployed
    checked = _devtrack(two, "check", "kws@1.1", "--profile", "ci-runner", "--bench",
                        "--repeats", "8", "--json", "--junit", tmp_path / "junit.xml")
    report = json.loads(checked.stdout)
    (profile,) = report["profiles"]
    assert report["passed"] and profile["baseline"] == "kws@1.0"
    assert profile["baseline_source"] == "deployed"
    ratio = next(c for c in profile["checks"] if c["name"] == "max_latency_regression_pct")
    assert ratio["status"] == "pass", ratio  # measured side by side, against the deployed one

    for runner in (one, two):
        verified = json.loads(_devtrack(runner, "audit", "verify", "--json").stdout)
        assert verified["ok"] and verified["files"]["files"] == 2
    log = json.loads(_devtrack(one, "log", "kws", "--json").stdout)
    assert {(e["kind"], e["actor"]) for e in log} >= {
        ("register", "runner-1"), ("deploy", "runner-1"), ("register", "runner-2"),
        ("check", "runner-2")}

    # Each folder still holds only its checkout: the database and the files are shared.
    for folder, _ in (one, two):
        assert sorted(p.name for p in folder.iterdir()) == ["device_profiles"]
    assert not list(tmp_path.rglob("devtrack.db"))  # (onnxruntime keeps a .db in the cache)
    assert len(list((shared / "artifacts" / "sha256").glob("*/*"))) == 2
