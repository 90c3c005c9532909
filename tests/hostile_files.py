"""Hostile ``.npz`` files built by hand for the tests: lying headers, zip bombs, pickles."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header declaring ``shape`` of ``descr``, padded as numpy does."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    total = -(-(10 + len(text) + 1) // 64) * 64
    text += " " * (total - 10 - len(text) - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip of ``members`` stored as they are (np.savez's layout)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def one_member_zip(name: str, deflated: bytes, size: int, crc: int) -> bytes:
    """A zip of one deflated member whose directory declares ``size`` uncompressed bytes,
    written field by field so that the declaration can be anything."""
    raw = name.encode()
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated),
                        size, len(raw), 0) + raw
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                          len(deflated), size, len(raw), 0, 0, 0, 0, 0, 0) + raw
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(deflated), 0)
    return local + deflated + central + end


def huge_shape_npz(path: Path, shape: tuple[int, ...] = (10**12, 16)) -> Path:
    """The issue's 548-byte file: a header declaring 64 TB of float32 and no data."""
    path.write_bytes(zip_of({"input.npy": npy_header("<f4", shape)}))
    return path


def zip_bomb_npz(path: Path, total: int = 2 << 30) -> Path:
    """A real zip bomb, ~2 MB on disk: one uint8 array of ``total`` bytes (header included)
    of zeros, deflated, whose headers honestly declare its size (CRC left 0: a reader that
    inflates it finds out only after allocating and inflating all of it)."""
    header = npy_header("|u1", (total - 128,))
    assert len(header) == 128
    chunk = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(total - 128, chunk)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    path.write_bytes(one_member_zip("input.npy", head + zeros * full + tail, total, 0))
    return path


def short_data_npz(path: Path) -> Path:
    """A header declaring (10, 16) float32 over a member that holds 8 rows."""
    data = np.zeros((8, 16), np.float32).tobytes()
    path.write_bytes(zip_of({"input.npy": npy_header("<f4", (10, 16)) + data}))
    return path


def overdeclared_zip_npz(path: Path) -> Path:
    """Header and zip directory agree on (1000, 16) float32, but the deflated stream holds
    only 10 rows: a reader must stop at what is really there."""
    header = npy_header("<f4", (1000, 16))
    payload = header + np.zeros((10, 16), np.float32).tobytes()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(payload) + compressor.flush()
    path.write_bytes(one_member_zip("input.npy", deflated, len(header) + 1000 * 16 * 4,
                                    zlib.crc32(payload)))
    return path


class _TouchOnLoad:
    """Unpickling this creates ``marker``: proof that a pickle was (or was not) executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (self.marker.touch, ())


def pickle_npz(path: Path, marker: Path) -> Path:
    """An object array whose pickle would create ``marker`` if anything unpickled it."""
    arr = np.empty(2, dtype=object)
    arr[0] = _TouchOnLoad(marker)
    np.savez(path, input=arr)
    return path
