"""Upload to and download from object storage against the local store's raw copy, and the
peak memory of each, for a large artifact (S3 API: moto's standalone server on 127.0.0.1).

Each operation runs in a fresh child process that reports its wall time and peak RSS:

- ``copy``: ``ArtifactStore.put`` into a local store (copy, fsync, hash: what register does),
- ``upload``: ``RemoteArtifactStore.put`` with an empty cache (the cache copy, a HEAD, the
  multipart upload),
- ``skip``: the same again with an empty cache while the object is there (a HEAD: no upload),
- ``download``: ``RemoteArtifactStore.verify`` with an empty cache (streamed, hashed on the
  way, fsync'ed, renamed into the cache),
- ``boto3_up`` / ``boto3_down``: boto3's own ``upload_file`` / ``download_file`` of the same
  bytes (no cache copy, no hashing): what the transfer costs without devtrack,
- ``idle``: importing boto3 and making a client, moving nothing (the fixed cost of a
  process that uses object storage, and the memory floor; the other operations start their
  clock after it).

Printed: MB/s of each, copy-time / upload-time and copy-time / download-time (≥ 1: as fast as
the raw copy), and peak RSS minus the idle floor for a small and the large file (flat memory:
the same for both). The server is a Python process on this machine: its speed bounds the
remote figures, as a real S3 endpoint's network would.

Run: python benchmarks/object_storage.py [--mb 200] [--small-mb 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BUCKET = "bench"


def child(op: str, source: str, sha: str, workdir: str) -> None:
    """One operation in this (fresh) process; prints {"seconds", "peak_mb"}. The client is
    made before the clock starts (``idle`` times importing boto3 and making it)."""
    t0 = time.perf_counter()
    from devtrack.artifacts import ArtifactStore, RemoteArtifactStore
    from devtrack.objectstore import client, configured_url

    bucket = configured_url()
    assert bucket is not None
    cache = Path(workdir) / "cache" / "artifacts"
    client()
    if op != "idle":
        t0 = time.perf_counter()
    if op == "copy":
        store = ArtifactStore(Path(workdir) / "local" / "artifacts")
        with store.hold(sha):
            store.put(Path(source), sha)
    elif op in ("upload", "skip"):
        remote = RemoteArtifactStore(cache, bucket)
        with remote.hold(sha):
            outcome = remote.put(Path(source), sha)
        assert outcome == ("new" if op == "upload" else "kept"), outcome
    elif op == "download":
        RemoteArtifactStore(cache, bucket).verify(sha)
    elif op == "boto3_up":  # the library alone, devtrack's checks and cache copy aside
        client().upload_file(source, bucket.bucket, bucket.key_for(sha) + ".raw")
    elif op == "boto3_down":
        client().download_file(bucket.bucket, bucket.key_for(sha) + ".raw",
                               str(Path(workdir) / "raw.bin"))
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto_server did not start within 30 s")


def _run(op: str, source: Path, sha: str, workdir: Path, env: dict[str, str]) -> dict[str, float]:
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    shutil.rmtree(workdir / "local", ignore_errors=True)
    out = subprocess.run([sys.executable, __file__, "--child", op, str(source), sha,
                          str(workdir)], env=env, capture_output=True, text=True, timeout=1800,
                         check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _file(path: Path, mb: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(mb):
            chunk = os.urandom(1 << 20) if i % 16 == 0 else bytes([i % 251]) * (1 << 20)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    import boto3

    tmp = Path(tempfile.mkdtemp(prefix="devtrack-s3-bench-"))
    port = _free_port()
    server = _start_server(port)
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "DEVTRACK_ARTIFACTS_URL": f"s3://{BUCKET}/devtrack"}
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        floor = _run("idle", tmp, "0" * 64, tmp, env)
        idle = floor["peak_mb"]
        print(f"import boto3 + make a client (once per process): {floor['seconds']:.2f} s; "
              f"peak RSS then {idle:.0f} MB")
        for mb in (args.small_mb, args.mb):
            source = tmp / f"model-{mb}.bin"
            sha = _file(source, mb)
            best: dict[str, dict[str, float]] = {}
            for _ in range(args.repeat):
                for op in ("copy", "upload", "skip", "download", "boto3_up", "boto3_down"):
                    if op == "upload":  # a fresh upload each time
                        s3.delete_object(Bucket=BUCKET, Key=f"devtrack/sha256/{sha[:2]}/{sha}")
                    got = _run(op, source, sha, tmp, env)
                    if op not in best or got["seconds"] < best[op]["seconds"]:
                        best[op] = got
            print(f"{mb} MB artifact (best of {args.repeat}):")
            for op in ("copy", "upload", "skip", "download", "boto3_up", "boto3_down"):
                seconds, peak = best[op]["seconds"], best[op]["peak_mb"]
                print(f"  {op:9s} {seconds:7.2f} s  {mb / seconds:8.1f} MB/s  "
                      f"peak RSS {peak:6.0f} MB (+{peak - idle:.0f} over idle)")
            copy = best["copy"]["seconds"]
            print(f"  copy/upload   {copy / best['upload']['seconds']:5.2f}   "
                  f"copy/download {copy / best['download']['seconds']:5.2f}   "
                  f"(1.00 = as fast as the raw copy)")
            print(f"  boto3 alone / devtrack: upload "
                  f"{best['boto3_up']['seconds'] / best['upload']['seconds']:5.2f}   download "
                  f"{best['boto3_down']['seconds'] / best['download']['seconds']:5.2f}   "
                  "(1.00 = devtrack adds nothing to the library's own transfer)")
            source.unlink()
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
