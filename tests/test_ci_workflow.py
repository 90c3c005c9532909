"""Done when (issue 13): the example GitHub Actions workflow (devtrack/examples/
github-actions.yml) is the tested recipe. Its steps run, as written there, in two empty
folders that share one PostgreSQL database and one S3 bucket (real servers on 127.0.0.1):
runner 1 runs the ``ship`` job (register, check --bench, promote, deploy), runner 2 the
``gate`` job (register a child of the deployed release, check it --bench against that
release, downloading its artifact from the bucket; audit verify)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import devtrack
from tests.s3_server import S3Server, s3_server  # noqa: F401 - the fixture
from tests.test_two_runners import TEAM_PROFILE

WORKFLOW = Path(devtrack.__file__).parent / "examples" / "github-actions.yml"
# What a team's runner brings that this test stands in for: the checkout, Python, the
# install (the test's own environment has devtrack) and the model build (a built model).
STAND_INS = {"install", "build"}
STEP_TIMEOUT_S = 240


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _expand(text: str, values: dict[str, str]) -> str:
    """GitHub's ``${{ … }}`` expressions, as Actions would fill them in for this run."""
    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        assert key in values, f"the workflow uses {key}, which the test does not provide"
        return values[key]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _run_job(job: str, folder: Path, env: dict[str, str], values: dict[str, str]) -> list[str]:
    """Run the ``run:`` steps of ``job`` in ``folder`` with bash, as a runner would; returns
    the ids run. Steps after a failure are skipped unless ``if: always()``."""
    ran: list[str] = []
    failed: subprocess.CompletedProcess[str] | None = None
    for step in _workflow()["jobs"][job]["steps"]:
        if "run" not in step or step.get("id") in STAND_INS:
            continue
        if failed is not None and step.get("if") != "always()":
            continue
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", _expand(step["run"], values)],
                                cwd=folder, env=env, capture_output=True, text=True,
                                timeout=STEP_TIMEOUT_S)
        ran.append(step["id"])
        if result.returncode != 0 and failed is None:
            failed = result
            print(f"step {step['id']} failed: {result.stdout}\n{result.stderr}")
    assert failed is None, (failed.args, failed.stdout, failed.stderr)
    return ran


def _runner(tmp_path: Path, name: str, model: Path, sha: str, values: dict[str, str],
            s3: S3Server) -> tuple[Path, dict[str, str]]:
    """An empty checkout: the team's device_profiles/ and the built model, its own cache."""
    folder = tmp_path / name
    (folder / "device_profiles").mkdir(parents=True)
    (folder / "device_profiles" / "ci-host.toml").write_text(
        TEAM_PROFILE.replace('name = "ci-runner"', 'name = "ci-host"'))
    (folder / "build").mkdir()
    shutil.copy(model, folder / "build" / "model.onnx")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DEVTRACK_", "AWS_", "PG"))}
    workflow_env = {key: _expand(str(value), values)
                    for key, value in _workflow()["env"].items()}
    env.update(workflow_env)
    # the install step's stand-in: this environment's devtrack on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"GITHUB_SHA": sha, "DEVTRACK_USER": name,
                "XDG_CACHE_HOME": str(tmp_path / f"{name}-cache"),
                "TMPDIR": str(tmp_path / f"{name}-tmp")})
    (tmp_path / f"{name}-tmp").mkdir()
    if not env["AWS_ENDPOINT_URL"]:
        env.pop("AWS_ENDPOINT_URL")
    return folder, env


@pytest.fixture
def bucket_url(s3_server: S3Server) -> str:  # noqa: F811
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                          aws_access_key_id="ci", aws_secret_access_key="ci-secret")
    client.create_bucket(Bucket="ml-artifacts")
    return "s3://ml-artifacts/devtrack"


def test_the_example_workflow_runs_on_two_fresh_runners(
        tmp_path: Path, pg_url: str, pg_server: Any, bucket_url: str, s3_server: S3Server,  # noqa: F811
        mlp_onnx: Path, mlp_onnx_b: Path) -> None:
    values = {"vars.DEVTRACK_DATABASE_URL": pg_url, "vars.DEVTRACK_ARTIFACTS_URL": bucket_url,
              "vars.AWS_DEFAULT_REGION": "us-east-1",
              "vars.AWS_ENDPOINT_URL": s3_server.endpoint,
              "secrets.DEVTRACK_DB_PASSWORD": pg_server.password,  # as PGPASSWORD, no passfile
              "secrets.AWS_ACCESS_KEY_ID": "ci", "secrets.AWS_SECRET_ACCESS_KEY": "ci-secret",
              "github.event.pull_request.title": "retrain with more data"}
    first_sha, second_sha = "a" * 40, "b" * 40
    one = _runner(tmp_path, "runner-1", mlp_onnx, first_sha, values, s3_server)
    two = _runner(tmp_path, "runner-2", mlp_onnx_b, second_sha, values, s3_server)

    assert _run_job("ship", *one, values) == ["register", "check", "promote", "deploy"]
    assert _run_job("gate", *two, values) == ["register", "check", "verify"]

    # Runner 2 gated its build against the release runner 1 deployed, measured side by side
    # on runner 2 (the deployed artifact came from the bucket into runner 2's cache).
    summary = (two[0] / "devtrack.md").read_text(encoding="utf-8")
    assert f"kws@{first_sha}" in summary, summary
    junit = (two[0] / "devtrack.xml").read_text(encoding="utf-8")
    assert 'failures="0"' in junit and 'errors="0"' in junit, junit
    cached = list((tmp_path / "runner-2-cache" / "devtrack").rglob("*"))
    assert any(p.is_file() and p.stat().st_size == mlp_onnx.stat().st_size for p in cached)

    # One registry: the child's parent is the deployed release; nothing in either folder but
    # the checkout and the reports.
    shown = subprocess.run([sys.executable, "-m", "devtrack", "show", f"kws@{second_sha}",
                            "--json"], cwd=two[0], env=two[1], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f'"parent": "{first_sha}"' in shown.stdout
    for folder, _ in (one, two):
        assert not (folder / ".devtrack").exists()
    assert not list(tmp_path.rglob("devtrack.db"))
