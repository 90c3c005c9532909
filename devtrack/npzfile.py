"""Reading ``.npz`` dataset files without trusting them: sizes come from the headers first.

An ``.npz`` is a zip of ``.npy`` members. Every member's ``.npy`` header (shape, dtype) and
the zip's own record of its uncompressed size are read and checked against each other and
against a size limit *before* any array is allocated, so a 548-byte file that declares
58 TiB, or a zip bomb, is refused in milliseconds with bounded memory. Arrays are then read
through the same open archive, never more bytes than the zip declares, with pickles off.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from devtrack.core.text import clip, shown
from devtrack.core.units import format_bytes
from devtrack.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of arrays, uncompressed; `dataset add --max-size` raises it
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_NPY_SUFFIX = ".npy"
_MAX_HEADER_BYTES = 10_000  # numpy's own default guard against a huge header


class NpzRefused(UsageError):
    """A file that is not a readable ``.npz`` dataset, or one over the size limit."""


@dataclass(frozen=True)
class MemberPlan:
    """One ``.npy`` member as its headers declare it, checked before it is read."""

    key: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def _not_npz(path: Path, why: str) -> NpzRefused:
    return NpzRefused(f"{path} is not a readable .npz dataset ({why}); write one with "
                      "numpy.savez(FILE, input=..., labels=...)")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _over_limit(path: Path, plan: MemberPlan, total: int, max_bytes: int) -> NpzRefused:
    what = (f"array {shown(plan.key)} declares shape {_shape_text(plan.shape)} {plan.dtype} = "
            f"{format_bytes(plan.nbytes)} uncompressed")
    if total > plan.nbytes:
        what += f" ({format_bytes(total)} with the arrays before it)"
    unit, factor = next((u, f) for u, f in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
                                            ("KiB", 2**10)) if total >= f or u == "KiB")
    fits = f"{-(-total // factor)}{unit}"  # the declared size, rounded up
    return NpzRefused(f"{path}: {what}, over the {format_bytes(max_bytes)} limit for a dataset; "
                      "nothing was loaded. If it really is this large, raise the limit with "
                      f"--max-size {fits}")


def _read_header(path: Path, fh: IO[bytes], key: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of the ``.npy`` stream ``fh``, nothing more read."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh, max_header_size=_MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fh, max_header_size=_MAX_HEADER_BYTES)
        else:
            raise _not_npz(path, f"array {shown(key)} uses .npy format {version}, which "
                                 "devtrack does not read")
        header_bytes = fh.tell()
    except NpzRefused:
        raise
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _not_npz(path, f"member {shown(key)} has no valid .npy header: "
                             f"{clip(first, 120)}") from None
    return tuple(int(d) for d in shape), dtype, header_bytes


def plan_members(path: Path, archive: zipfile.ZipFile, max_bytes: int) -> list[MemberPlan]:
    """Every member's declared shape, dtype and size, checked against each other and the
    limit; reads only the headers."""
    plans: list[MemberPlan] = []
    seen: set[str] = set()
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        if not info.filename.endswith(_NPY_SUFFIX):
            raise _not_npz(path, f"member {shown(info.filename)} is not an .npy array")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # zipfile inflates bzip2 and lzma without a bound on one call's output
            raise _not_npz(path, f"member {shown(info.filename)} uses zip compression method "
                                 f"{info.compress_type}; devtrack reads stored or deflated "
                                 "members, as numpy.savez and numpy.savez_compressed write")
        key = info.filename[: -len(_NPY_SUFFIX)]
        if key in seen:
            raise _not_npz(path, f"array {shown(key)} appears twice")
        seen.add(key)
        with archive.open(info) as fh:
            shape, dtype, header_bytes = _read_header(path, fh, key)
        if any(d < 0 for d in shape):
            raise _not_npz(path, f"array {shown(key)} declares a negative dimension: "
                                 f"{_shape_text(shape)}")
        if dtype.hasobject:
            raise _not_npz(path, f"array {shown(key)} holds Python objects")
        if dtype.kind not in NUMERIC_KINDS:
            raise NpzRefused(f"{path}: array {shown(key)} has dtype {dtype}; datasets hold "
                             "numeric or bool arrays only")
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        plan = MemberPlan(key, info, shape, dtype, nbytes)
        total += nbytes
        if total > max_bytes:
            raise _over_limit(path, plan, total, max_bytes)
        if header_bytes + nbytes != info.file_size:
            raise _not_npz(path, f"corrupt: array {shown(key)} declares shape "
                                 f"{_shape_text(shape)} {dtype} ({nbytes} bytes) but its member "
                                 f"holds {info.file_size - header_bytes} bytes of data")
        plans.append(plan)
    if not plans:
        raise _not_npz(path, "it holds no arrays")
    return plans


def read_npz(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, after checking the sizes its headers declare
    (at most ``max_bytes`` in all); NpzRefused (one line) for anything else."""
    if not path.exists():
        raise NpzRefused(f"{path} does not exist; pass the path of an .npz file")
    if not path.is_file():
        raise NpzRefused(f"{path} is not a file; pass the path of an .npz file")
    if not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            head = fh.read(6)
        why = "a .npy file holds a single array" if head == b"\x93NUMPY" else "not a zip archive"
        raise _not_npz(path, why)
    from numpy.lib import format as npy

    try:
        with zipfile.ZipFile(path) as archive:
            plans = plan_members(path, archive, max_bytes)
            arrays: dict[str, np.ndarray] = {}
            for plan in plans:
                with archive.open(plan.info) as fh:
                    arrays[plan.key] = npy.read_array(fh, allow_pickle=False,
                                                      max_header_size=_MAX_HEADER_BYTES)
    except NpzRefused:
        raise
    except ValueError as exc:
        text = str(exc)
        why = "an array holds Python objects" if "pickle" in text else text.splitlines()[0]
        raise _not_npz(path, f"corrupt: {clip(why, 120)}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, zlib.error, OSError,
            EOFError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _not_npz(path, f"corrupt: {clip(first, 120)}") from None
    return arrays
