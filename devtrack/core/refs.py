"""Names and references: model names, versions and ``MODEL@VERSION`` strings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtrack.core.text import shown
from devtrack.errors import UsageError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
RESERVED_VERSIONS = ("latest", "deployed")


@dataclass(frozen=True)
class ReleaseRef:
    """A reference to a release as a user typed it; ``version`` may be an alias."""

    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def is_alias(self) -> bool:
        return self.version in RESERVED_VERSIONS


def check_model_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid model name {shown(name)}: use letters, digits, '.', '_', '-' or '+' "
            "(e.g. hand-landmark)"
        )
    return name


def check_version(version: str) -> str:
    if not _NAME_RE.match(version):
        raise UsageError(
            f"invalid version {shown(version)}: use letters, digits, '.', '_', '-' or '+' "
            "(e.g. 1.2.0)"
        )
    if version in RESERVED_VERSIONS:
        raise UsageError(f"version {shown(version)} is reserved as an alias; pick another version")
    return version


def parse_ref(text: str) -> ReleaseRef:
    """Parse ``MODEL@VERSION`` (VERSION may be ``latest`` or ``deployed``)."""
    model, sep, version = text.partition("@")
    if not sep or not model or not version or "@" in version:
        raise UsageError(
            f"malformed release reference {shown(text)}: expected MODEL@VERSION, "
            "e.g. hand-landmark@1.2.0 or hand-landmark@latest"
        )
    if not _NAME_RE.match(model) or not _NAME_RE.match(version):
        raise UsageError(
            f"malformed release reference {shown(text)}: model and version may contain letters, "
            "digits, '.', '_', '-' and '+'"
        )
    return ReleaseRef(model, version)
