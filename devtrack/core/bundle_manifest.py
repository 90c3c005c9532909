"""A bundle's manifest: its format version, member names, sizes and sha256s, checked purely."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devtrack.errors import UsageError

BUNDLE_FORMAT = "devtrack-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DATA_NAME = "bundle.json"
MAX_MANIFEST_BYTES = 16 << 20
MAX_DATA_BYTES = 1 << 30
# A member is one of: the data file, artifacts/<sha256>, datasets/<sha256>. Nothing else.
_MEMBER = re.compile(r"^(bundle\.json|(artifacts|datasets)/[0-9a-f]{64})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Member:
    """One file of a bundle as its manifest names it."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The checked manifest: who wrote the bundle and every member's sha256 and size."""

    format_version: int
    devtrack_version: str
    host: str
    created_by: str
    created_at: str
    members: dict[str, Member]

    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.members.values())

    def to_dict(self) -> dict[str, Any]:
        return {"format": BUNDLE_FORMAT, "format_version": self.format_version,
                "devtrack_version": self.devtrack_version, "host": self.host,
                "created_by": self.created_by, "created_at": self.created_at,
                "members": {m.name: {"sha256": m.sha256, "size": m.size}
                            for m in sorted(self.members.values(), key=lambda m: m.name)}}


def check_member_name(name: str) -> str:
    """Refuse a member path that could land outside the bundle's own layout (``../``,
    absolute, backslashes, anything but the three kinds of member devtrack writes)."""
    if not _MEMBER.match(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise UsageError(f"bundle member {shown!r} is not a path devtrack writes (a path that "
                         "escapes, or a foreign file); refusing the bundle, nothing was written")
    return name


def _bad(what: str) -> UsageError:
    return UsageError(f"the bundle's manifest is malformed ({what}); it was not written by "
                      "devtrack export or was damaged; nothing was written")


def parse_manifest(raw: bytes, reader_version: str) -> Manifest:
    """The manifest of ``raw`` (JSON), refused when it is malformed or from a newer devtrack."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad("not JSON") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise _bad("not a devtrack bundle manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad("no format_version")
    if version > FORMAT_VERSION:
        raise UsageError(
            f"the bundle was written by a newer devtrack ({data.get('devtrack_version')}, bundle "
            f"format {version}; this devtrack {reader_version} reads up to {FORMAT_VERSION}); "
            "upgrade devtrack with 'pip install -U devtrack'; nothing was written")
    members = data.get("members")
    if not isinstance(members, dict) or DATA_NAME not in members:
        raise _bad(f"no member list naming {DATA_NAME}")
    checked: dict[str, Member] = {}
    for name, entry in members.items():
        check_member_name(str(name))
        if not isinstance(entry, Mapping):
            raise _bad(f"entry of {name}")
        sha, size = entry.get("sha256"), entry.get("size")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise _bad(f"sha256 of {name}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad(f"size of {name}")
        if "/" in name and name.rsplit("/", 1)[1] != sha:
            raise _bad(f"{name} is not named by its sha256")
        checked[name] = Member(name, sha, size)
    if checked[DATA_NAME].size > MAX_DATA_BYTES:
        raise _bad(f"{DATA_NAME} declares {checked[DATA_NAME].size} bytes")
    text = {key: data.get(key) for key in ("devtrack_version", "host", "created_by",
                                            "created_at")}
    if not all(isinstance(value, str) for value in text.values()):
        raise _bad("who wrote it, where and when")
    return Manifest(version, str(text["devtrack_version"]), str(text["host"]),
                    str(text["created_by"]), str(text["created_at"]), checked)


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as written into a bundle (canonical: its sha256 is the bundle's digest)."""
    return json.dumps(manifest.to_dict(), sort_keys=True, indent=1).encode("utf-8")


def bundle_digest(raw_manifest: bytes) -> str:
    """A bundle's identity: the sha256 of its manifest, which names every member's sha256."""
    return hashlib.sha256(raw_manifest).hexdigest()


def run_identity(artifact_sha256: str, fields_sha256: str, samples_sha256: str | None) -> str:
    """A run's identity across workspaces: its release's bytes, its sealed fields (which
    include when, where and by whom it ran) and its samples — the same in every store that
    holds the run, so importing it twice adds it once."""
    canonical = json.dumps([artifact_sha256, fields_sha256, samples_sha256])
    return hashlib.sha256(canonical.encode()).hexdigest()
