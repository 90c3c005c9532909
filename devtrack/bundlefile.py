"""Bundle zip files: written atomically; read directory-first, every member bounded and
verified against the manifest's sha256 before the caller may use it."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from devtrack.core.bundle_manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    Manifest,
    check_member_name,
    manifest_bytes,
    parse_manifest,
)
from devtrack.errors import UsageError

CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 64 << 30
Progress = Callable[[int, int], None]  # (bytes verified so far, bytes in all)


def _refused(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: {why}; refusing the bundle, nothing was written")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _check_directory(path: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Every entry of the zip's central directory, refused before any member is read when
    one is a symlink, a folder, a duplicate or a path devtrack does not write."""
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if _is_symlink(info):
            raise _refused(path, f"member {name!r} is a symbolic link")
        if name != MANIFEST_NAME:
            try:
                check_member_name(name)
            except UsageError:
                shown = name if len(name) <= 80 else name[:77] + "..."
                raise _refused(path, f"member {shown!r} is not a path devtrack writes (it "
                               "escapes the bundle, or is a foreign file)") from None
        if name in entries:
            raise _refused(path, f"member {name!r} appears twice")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refused(path, f"member {name!r} uses zip compression method "
                           f"{info.compress_type}; devtrack writes stored or deflated members")
        entries[name] = info
    return entries


@contextmanager
def open_bundle(path: Path, reader_version: str,
                max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[tuple[zipfile.ZipFile,
                                                                      Manifest, bytes]]:
    """The open zip, its checked manifest and the manifest's raw bytes (its digest is the
    bundle's identity). Only the central directory and the manifest are read here; sizes
    are bounded from them before any member is."""
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a bundle made by 'devtrack export'")
    if not path.is_file():
        raise UsageError(f"{path} is not a file; give a bundle made by 'devtrack export'")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise _refused(path, "not a complete zip file (truncated or damaged)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    with zf:
        # The manifest first: a newer format may hold members this devtrack does not know,
        # and "upgrade devtrack" is the useful answer then.
        info = next((i for i in zf.infolist() if i.filename == MANIFEST_NAME), None)
        if info is None:
            raise _refused(path, f"it has no {MANIFEST_NAME} (not a devtrack bundle)")
        if _is_symlink(info) or info.compress_type not in (zipfile.ZIP_STORED,
                                                           zipfile.ZIP_DEFLATED):
            raise _refused(path, f"member {MANIFEST_NAME!r} is a symbolic link or uses a "
                           "compression method devtrack does not write")
        if info.file_size > MAX_MANIFEST_BYTES:
            raise _refused(path, f"its manifest declares {info.file_size} bytes (at most "
                           f"{MAX_MANIFEST_BYTES})")
        raw = _read_bounded(path, zf, info, MAX_MANIFEST_BYTES)
        manifest = parse_manifest(raw, reader_version)
        entries = _check_directory(path, zf)
        for name, entry in entries.items():
            if name == MANIFEST_NAME:
                continue
            member = manifest.members.get(name)
            if member is None:
                raise _refused(path, f"member {name} is not in its manifest")
            if entry.file_size != member.size:
                raise _refused(path, f"member {name} is {entry.file_size} bytes, its manifest "
                               f"says {member.size}")
        absent = sorted(set(manifest.members) - set(entries))
        if absent:
            raise _refused(path, f"member {absent[0]} named by its manifest is missing "
                           f"({len(absent)} in all; an incomplete bundle)")
        if manifest.total_size > max_bytes:
            raise _refused(path, f"its members declare {manifest.total_size} bytes, over the "
                           f"limit of {max_bytes} (raise it with --max-size)")
        yield zf, manifest, raw


def _read_bounded(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        with zf.open(info) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise _refused(path, f"member {info.filename} cannot be read ({exc})") from None
    if len(data) > limit:
        raise _refused(path, f"member {info.filename} is larger than its {limit} bytes")
    return data


def extract_verified(path: Path, zf: zipfile.ZipFile, manifest: Manifest, dest: Path,
                     progress: Progress | None = None) -> dict[str, Path]:
    """Copy every member into ``dest`` (a private temp folder), each streamed, stopped at
    its declared size and checked against its sha256; refused at the first that differs.
    Returns member name -> extracted file."""
    total = manifest.total_size
    free = shutil.disk_usage(dest).free
    if total > free:
        raise _refused(path, f"its members declare {total} bytes, more than the {free} bytes "
                       f"free in {dest.parent} (set TMPDIR to a larger disk)")
    done = 0
    out: dict[str, Path] = {}
    for member in sorted(manifest.members.values(), key=lambda m: m.name):
        target = dest / member.name.replace("/", "_")
        digest = hashlib.sha256()
        seen = 0
        try:
            with zf.open(member.name) as src, target.open("wb") as sink:
                while chunk := src.read(CHUNK):
                    seen += len(chunk)
                    if seen > member.size:
                        raise _refused(path, f"member {member.name} is larger than the "
                                       f"{member.size} bytes its manifest declares")
                    digest.update(chunk)
                    sink.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _refused(path, f"member {member.name} is damaged ({exc})") from None
        if seen != member.size or digest.hexdigest() != member.sha256:
            raise _refused(path, f"member {member.name} does not match its manifest (sha256 "
                           f"{digest.hexdigest()[:12]}, expected {member.sha256[:12]})")
        out[member.name] = target
    return out


def write_bundle(path: Path, manifest: Manifest, files: dict[str, Path]) -> None:
    """Write the zip atomically: members, then the manifest, into a temp file beside
    ``path`` that replaces it only when complete (a kill leaves no half bundle)."""
    path = path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for name in sorted(files):
                    zf.write(files[name], name)
                zf.writestr(MANIFEST_NAME, manifest_bytes(manifest))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
