"""S3 and S3-compatible object storage through boto3 (imported only when an s3:// URL is used):
content-addressed objects, streamed up and down."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devtrack.errors import DevtrackError, UsageError

if TYPE_CHECKING:
    from botocore.client import BaseClient

URL_VARIABLE = "DEVTRACK_ARTIFACTS_URL"
CHUNK = 8 << 20  # multipart part size and download chunk: memory stays flat


class ObjectStoreError(DevtrackError):
    """The object store cannot be reached or refused a request (credentials, bucket)."""


@dataclass(frozen=True)
class BucketUrl:
    """``s3://bucket/prefix`` split; keys are ``prefix/sha256/ab/abcdef…``."""

    bucket: str
    prefix: str

    def key_for(self, sha256: str) -> str:
        path = f"sha256/{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{path}" if self.prefix else path

    def url_for(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{self.key_for(sha256)}"

    @property
    def cache_name(self) -> str:
        """A folder name for this bucket and prefix in the local cache."""
        return "/".join(part for part in (self.bucket, self.prefix) if part)


def parse_url(url: str) -> BucketUrl:
    """``s3://bucket[/prefix]``, refused in one line when it is anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3":
        raise UsageError(f"{URL_VARIABLE}={url!r} is not supported: give s3://BUCKET/PREFIX "
                         "(S3 or an S3-compatible store; set AWS_ENDPOINT_URL for MinIO, Ceph "
                         "or R2)")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket or parts.query or parts.fragment or ".." in prefix.split("/"):
        raise UsageError(f"{URL_VARIABLE}={url!r} names no bucket (or has a query, a fragment "
                         "or '..'); give s3://BUCKET/PREFIX")
    return BucketUrl(bucket, prefix)


def configured_url() -> BucketUrl | None:
    """The object store the environment names, if any."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    return parse_url(url) if url else None


def cache_folder(bucket: BucketUrl) -> Path:
    """Where downloads of ``bucket`` are kept: ``$XDG_CACHE_HOME/devtrack/s3/BUCKET/PREFIX``
    (``~/.cache`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devtrack" / "s3" / bucket.cache_name


@functools.lru_cache(maxsize=4)
def _client(settings: tuple[str | None, ...]) -> BaseClient:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UsageError(f"{URL_VARIABLE} names object storage, which needs boto3: "
                         "pip install 'devtrack[s3]'") from None

    # The standard credential chain and region; AWS_ENDPOINT_URL is read by boto3 itself.
    config = Config(connect_timeout=10, read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config)


def client() -> BaseClient:
    """One client per set of AWS settings (created once: it takes a moment)."""
    return _client(tuple(os.environ.get(name) for name in _SETTINGS))


_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_REGION",
             "AWS_REGION")


def _failure(bucket: BucketUrl, action: str, exc: Exception) -> ObjectStoreError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ObjectStoreError(f"object store s3://{bucket.bucket}: cannot {action} ({text}); "
                            "check the bucket, AWS credentials and AWS_ENDPOINT_URL")


def _errors() -> tuple[type[Exception], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, Boto3Error)


def _errors_or_os() -> tuple[type[Exception], ...]:
    return (*_errors(), OSError)


def _status(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def head(bucket: BucketUrl, sha256: str) -> dict[str, Any] | None:
    """The object's size and metadata, or None when there is no such object."""
    try:
        found = client().head_object(Bucket=bucket.bucket, Key=bucket.key_for(sha256))
    except _errors() as exc:
        if _status(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _failure(bucket, f"look up {bucket.key_for(sha256)}", exc) from None
    return {"size": int(found["ContentLength"]),
            "sha256": (found.get("Metadata") or {}).get("sha256")}


def upload(bucket: BucketUrl, source: Path, sha256: str) -> None:
    """Stream ``source`` to the object of ``sha256`` (multipart for large files)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_chunksize=CHUNK, multipart_threshold=CHUNK,
                            max_concurrency=4, io_chunksize=1 << 20)
    try:
        client().upload_file(str(source), bucket.bucket, bucket.key_for(sha256),
                             ExtraArgs={"Metadata": {"sha256": sha256}}, Config=config)
    except _errors_or_os() as exc:
        raise _failure(bucket, f"upload {bucket.key_for(sha256)}", exc) from None


def _stream(bucket: BucketUrl, sha256: str, verb: str,
            sink: Callable[[bytes], object]) -> str | None:
    """Feed the object's bytes to ``sink`` chunk by chunk; their sha256, or None when there
    is no such object. A failure names ``verb`` and the key."""
    import hashlib

    hashed = hashlib.sha256()
    key = bucket.key_for(sha256)
    try:
        response = client().get_object(Bucket=bucket.bucket, Key=key)
    except _errors() as exc:
        if _status(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _failure(bucket, f"{verb} {key}", exc) from None
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(CHUNK):
            hashed.update(chunk)
            sink(chunk)
    except _errors_or_os() as exc:
        raise _failure(bucket, f"{verb} {key}", exc) from None
    finally:
        body.close()
    return hashed.hexdigest()


def digest(bucket: BucketUrl, sha256: str,
           on_chunk: Callable[[int], None] | None = None) -> str | None:
    """The sha256 of the object's bytes, streamed (nothing written); None when absent."""
    return _stream(bucket, sha256, "read",
                   lambda chunk: on_chunk(len(chunk)) if on_chunk is not None else None)


def download(bucket: BucketUrl, sha256: str, dest: Path) -> str | None:
    """Stream the object of ``sha256`` into ``dest``; the sha256 of the bytes received (the
    caller compares), or None when there is no such object."""
    try:
        with dest.open("wb") as out:
            received = _stream(bucket, sha256, "download", out.write)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:  # the local file: opening, flushing, syncing
        raise _failure(bucket, f"download {bucket.key_for(sha256)}", exc) from None
    return received
