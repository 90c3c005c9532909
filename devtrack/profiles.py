"""Find, read and copy device profile TOML files: shipped ones and a workspace's own."""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from devtrack.core.profile import NAME_PATTERN, Profile, validate_profile
from devtrack.core.text import clip, shown
from devtrack.errors import DevtrackError, NotFoundError, ProfileError

MAX_NAME_CHARS = 250  # with ".toml", the longest file name most file systems allow

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PROFILES_DIRNAME = "device_profiles"
_SHIPPED_DIRNAME = "_shipped_profiles"  # where pyproject.toml force-includes device_profiles/


@dataclass(frozen=True)
class ProfileEntry:
    """One profile file as ``devtrack profiles`` lists it: loaded, or broken with the reason."""

    name: str  # the file name stem
    path: Path
    source: str  # "workspace" | "shipped"
    profile: Profile | None = None  # set when the file validates
    error: str | None = None  # the one-line ProfileError message otherwise
    shadows: Path | None = None  # the shipped file a workspace file of that name overrides

    @property
    def ok(self) -> bool:
        return self.profile is not None


def shipped_profiles_dir() -> Path:
    """The profiles that come with devtrack: in the wheel, else the source checkout's."""
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / _SHIPPED_DIRNAME
    if installed.is_dir():
        return installed
    return package_dir.parent / PROFILES_DIRNAME


def workspace_profiles_dir(workspace_root: Path) -> Path:
    """Where a workspace keeps its own profiles (``devtrack init`` copies the shipped ones)."""
    return workspace_root / PROFILES_DIRNAME


def load_profile_file(path: Path, *, origin: str = "file") -> Profile:
    """Read and validate one profile file; its stem must equal the ``name`` inside."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such profile file") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {_describe_toml_error(exc, text)}") from None
    profile = validate_profile(data, str(path))
    if profile.name != path.stem:
        raise ProfileError(
            f"{path}: name: {profile.name!r} does not match the file name; the file name stem "
            f"must equal the name inside (rename the file to {profile.name}.toml "
            f'or set name = "{path.stem}")')
    return replace(profile, origin=origin)


def list_profiles(workspace_root: Path | None) -> list[ProfileEntry]:
    """Every profile by name; a workspace file overrides a shipped file of the same name."""
    shipped = {p.stem: p for p in _toml_files(shipped_profiles_dir())}
    own = {p.stem: p for p in _toml_files(workspace_profiles_dir(workspace_root))} \
        if workspace_root is not None else {}
    entries = []
    for name in sorted(shipped.keys() | own.keys()):
        if name in own:
            entries.append(_entry(name, own[name], "workspace", shipped.get(name)))
        else:
            entries.append(_entry(name, shipped[name], "shipped", None))
    return entries


def load_profile(name: str, workspace_root: Path | None) -> Profile:
    """The profile called ``name`` (workspace first, then shipped), or a ``*.toml`` path."""
    if name.endswith(".toml"):
        return load_profile_file(Path(name))
    candidates = []
    if workspace_root is not None:
        candidates.append((workspace_profiles_dir(workspace_root), "workspace"))
    candidates.append((shipped_profiles_dir(), "shipped"))
    if NAME_PATTERN.match(name) and len(name) <= MAX_NAME_CHARS:
        for directory, origin in candidates:
            path = directory / f"{name}.toml"
            if path.is_file():
                return load_profile_file(path, origin=origin)
    known = sorted({p.stem for directory, _ in candidates for p in _toml_files(directory)})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = f"known profiles: {', '.join(known)}" if known else "no profiles are defined"
    stem = clip(name)
    where = (f"{workspace_profiles_dir(workspace_root)}/{stem}.toml"
             if workspace_root is not None else f"a {stem}.toml file and pass its path")
    raise NotFoundError(f"unknown device profile {shown(name)}{hint}; {listing}; "
                        f"to define it, create {where}")


def copy_shipped_profiles(dest_dir: Path) -> list[Path]:
    """Copy the shipped profiles into ``dest_dir``; existing files are left alone."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for src in _toml_files(shipped_profiles_dir()):
        dest = dest_dir / src.name
        try:
            with dest.open("xb") as out:  # "x": fails rather than overwrite
                out.write(src.read_bytes())
        except FileExistsError:
            continue
        copied.append(dest)
    return copied


def _toml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml")
                  if p.is_file() and not p.name.startswith("."))


def _entry(name: str, path: Path, source: str, shadows: Path | None) -> ProfileEntry:
    try:
        profile = load_profile_file(path, origin=source)
    except DevtrackError as exc:
        return ProfileEntry(name, path, source, error=str(exc), shadows=shadows)
    return ProfileEntry(name, path, source, profile=profile, shadows=shadows)


def _describe_toml_error(exc: tomllib.TOMLDecodeError, text: str) -> str:
    """'line 3, column 9: invalid TOML: Invalid value' from tomllib's message."""
    message = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        return f"line {match[1]}, column {match[2]}: invalid TOML: {message[: match.start()]}"
    match = re.search(r"\s*\(at end of document\)$", message)
    if match:
        last = max(1, len(text.splitlines()))
        return f"line {last} (end of file): invalid TOML: {message[: match.start()]}"
    return f"invalid TOML: {message}"
