"""DEVTRACK_ARTIFACTS_URL=s3://…: artifacts uploaded once, downloaded into a verified cache,
a changed object refused; against a real S3-API server on 127.0.0.1 (tests/s3_server.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import snapshot_workspace
from tests.s3_server import S3Server, s3_server  # noqa: F401 - the fixture
from tests.test_cli_bench import TINY_PROFILE
from tests.test_cli_errors import assert_clean_error


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,  # noqa: F811
           request: pytest.FixtureRequest) -> Iterator[Any]:
    """An empty bucket of its own, the environment pointing at it, an empty cache."""
    import boto3

    name = f"b{abs(hash(request.node.nodeid)) % 10**12}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server.endpoint,
                       "XDG_CACHE_HOME": str(tmp_path / "cache"),
                       "DEVTRACK_ARTIFACTS_URL": f"s3://{name}/team/models"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    client.create_bucket(Bucket=name)
    yield client, name
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def _key(sha: str) -> str:
    return f"team/models/sha256/{sha[:2]}/{sha}"


def _sha(path: Path) -> str:
    from devtrack.artifacts import sha256_file

    return sha256_file(path)


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "devtrack" / "s3"


def test_register_uploads_under_the_content_address_once(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    client, name = bucket
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    key = _key(_sha(mlp_onnx))
    found = client.head_object(Bucket=name, Key=key)
    assert found["ContentLength"] == mlp_onnx.stat().st_size
    assert client.get_object(Bucket=name, Key=key)["Body"].read() == mlp_onnx.read_bytes()
    local = in_ws / ".devtrack" / "artifacts"
    assert not [p for p in local.rglob("*") if p.is_file()]  # nothing stored in the workspace
    # Mark the object; a second upload would replace it (and lose the mark).
    client.copy_object(Bucket=name, Key=key, CopySource={"Bucket": name, "Key": key},
                       Metadata={**found["Metadata"], "mark": "first"},
                       MetadataDirective="REPLACE")
    shutil.rmtree(_cache(tmp_path))
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.1").exit_code == 0
    assert client.head_object(Bucket=name, Key=key)["Metadata"]["mark"] == "first"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]] == [key]


def test_a_fresh_runner_downloads_verifies_caches_and_benches(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    shutil.rmtree(_cache(tmp_path))  # an empty cache, as on a new CI runner
    benched = run_cli("bench", "kws@1.0", "--profile", "tiny")
    assert benched.exit_code == 0, benched.err
    cached = list(_cache(tmp_path).rglob(_sha(mlp_onnx)))
    assert len(cached) == 1 and cached[0].read_bytes() == mlp_onnx.read_bytes()
    verified = run_cli("audit", "verify", "--deep")
    assert verified.exit_code == 0, verified.err
    assert "1 object in s3://" in verified.out and "rehashed" in verified.out


def test_a_changed_object_is_refused_naming_release_and_key(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    client, name = bucket
    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    key = _key(_sha(mlp_onnx))
    data = bytearray(mlp_onnx.read_bytes())
    data[-1] ^= 1  # same size, same metadata: only the bytes tell
    client.put_object(Bucket=name, Key=key, Body=bytes(data),
                      Metadata={"sha256": _sha(mlp_onnx)})
    shutil.rmtree(_cache(tmp_path))
    before = snapshot_workspace(in_ws)
    benched = run_cli("bench", "kws@1.0", "--profile", "tiny")
    assert benched.exit_code == 2 and "Traceback" not in benched.err
    last = benched.err.strip().splitlines()[-1]  # after bench's "[1/1] kws@1.0 on tiny ..."
    assert "release kws@1.0" in last and key in last and "changed" in last
    assert snapshot_workspace(in_ws) == before  # no run stored
    assert not list(_cache(tmp_path).rglob(_sha(mlp_onnx)))  # nothing bad kept in the cache
    assert run_cli("audit", "verify").exit_code == 0  # sizes only: the same size
    deep = run_cli("audit", "verify", "--deep", "--json")
    assert deep.exit_code == 1
    (problem,) = json.loads(deep.out)["files"]["problems"]
    assert key in problem["message"] and "kws@1.0" in problem["message"]


def test_a_missing_object_fails_verify_and_deploy_names_it(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    client, name = bucket
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    client.delete_object(Bucket=name, Key=_key(_sha(mlp_onnx)))
    shutil.rmtree(_cache(tmp_path))
    verified = run_cli("audit", "verify")
    assert verified.exit_code == 1 and "is missing" in verified.err
    assert run_cli("notes", "kws@1.0", "--set", "n").exit_code == 0
    assert_clean_error(run_cli("promote", "kws@1.0", "--to", "approved", "--reason", "r"),
                       "kws@1.0", "missing from the object store")


def test_a_corrupted_cache_copy_is_downloaded_again(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    (cached,) = _cache(tmp_path).rglob(_sha(mlp_onnx))
    cached.chmod(0o644)
    cached.write_bytes(b"damaged")
    assert run_cli("bench", "kws@1.0", "--profile", "tiny").exit_code == 0
    assert cached.read_bytes() == mlp_onnx.read_bytes()


@pytest.mark.parametrize(("url", "needle"), [
    ("ftp://host/x", "not supported"),
    ("s3://", "names no bucket"),
    ("s3://bucket/../up", "names no bucket"),
])
def test_a_bad_url_is_one_line_exit_2(url: str, needle: str, in_ws: Path, mlp_onnx: Path,
                                      monkeypatch: pytest.MonkeyPatch, run_cli) -> None:
    monkeypatch.setenv("DEVTRACK_ARTIFACTS_URL", url)
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0"), needle,
                       "DEVTRACK_ARTIFACTS_URL")


def test_an_unreachable_store_is_one_line_exit_2_and_nothing_registered(
        in_ws: Path, mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        run_cli, unchanged) -> None:
    from tests.s3_server import _free_port

    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
                       "XDG_CACHE_HOME": str(tmp_path / "cache"),
                       "DEVTRACK_ARTIFACTS_URL": "s3://nowhere/x"}.items():
        monkeypatch.setenv(key, value)
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0"),
                       "s3://nowhere", "AWS_ENDPOINT_URL")
    unchanged()


def test_without_a_url_boto3_is_never_imported(in_ws: Path, mlp_onnx: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from devtrack.cli import main; "
            f"rc = main(['register', {str(mlp_onnx)!r}, '-m', 'kws', '-v', '1']); "
            "print(rc, 'boto3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=in_ws, timeout=120).stdout.split()
    assert out[-2:] == ["0", "False"]


def test_a_missing_bucket_is_one_line_exit_2_and_nothing_registered(
        bucket: Any, in_ws: Path, mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch,
        run_cli, unchanged) -> None:
    monkeypatch.setenv("DEVTRACK_ARTIFACTS_URL", "s3://no-such-bucket/x")
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0"),
                       "s3://no-such-bucket", "check the bucket")
    unchanged()


def test_gc_tidies_the_cache_and_leaves_the_bucket_alone(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    client, name = bucket
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    stray = _cache(tmp_path).glob("*/*/*/artifacts/sha256")
    folder = next(stray) / "00"
    folder.mkdir()
    (folder / ("0" * 64)).write_bytes(b"left over")
    result = run_cli("gc", "--json")
    assert result.exit_code == 0, result.err
    assert not (folder / ("0" * 64)).exists()
    assert client.head_object(Bucket=name, Key=_key(_sha(mlp_onnx)))
    assert run_cli("audit", "verify").exit_code == 0


def test_a_changed_object_is_restored_by_removing_it_and_registering_again(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, run_cli) -> None:
    client, name = bucket
    (in_ws / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    key = _key(_sha(mlp_onnx))
    client.put_object(Bucket=name, Key=key, Body=b"other bytes")  # size and metadata differ
    assert run_cli("audit", "verify").exit_code == 1
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0  # repairs
    assert client.get_object(Bucket=name, Key=key)["Body"].read() == mlp_onnx.read_bytes()
    assert run_cli("audit", "verify", "--deep").exit_code == 0
    restore = json.loads(run_cli("log", "--json").out)[-1]
    assert restore["kind"] == "artifact_restore"


def test_a_bundle_exported_from_a_bucket_imports_into_a_local_workspace(
        bucket: Any, in_ws: Path, mlp_onnx: Path, tmp_path: Path, monkeypatch, run_cli) -> None:
    from devtrack.cli import main

    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    shutil.rmtree(_cache(tmp_path))  # export downloads what it carries, verified
    assert run_cli("export", "kws", "-o", tmp_path / "kws.zip").exit_code == 0
    monkeypatch.delenv("DEVTRACK_ARTIFACTS_URL")
    local = tmp_path / "local"
    assert main(["init", str(local)]) == 0
    assert run_cli("import", tmp_path / "kws.zip", "-w", local).exit_code == 0
    stored = local / ".devtrack" / "artifacts" / "sha256" / _sha(mlp_onnx)[:2] / _sha(mlp_onnx)
    assert stored.read_bytes() == mlp_onnx.read_bytes()
    assert run_cli("audit", "verify", "-w", local).exit_code == 0
