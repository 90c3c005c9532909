"""Read a model file (ONNX or TFLite, told apart by content) into a ``ModelSummary``."""

from __future__ import annotations

from pathlib import Path

from devtrack.core.summary import ModelSummary
from devtrack.errors import InvalidModelError

FORMATS = ("onnx", "tflite")
_HEAD_BYTES = 64 * 1024
_PASS_A_MODEL = "pass a .onnx or .tflite file"

# (magic at offset 0, what the file is, what to do instead)
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "file starts with PNG image bytes", _PASS_A_MODEL),
    (b"\xff\xd8\xff", "file starts with JPEG image bytes", _PASS_A_MODEL),
    (b"GIF8", "file starts with GIF image bytes", _PASS_A_MODEL),
    (b"PK\x03\x04", "file is a ZIP archive, e.g. a PyTorch .pt or a Keras .keras",
     "export it to ONNX or convert it to TFLite first"),
    (b"\x89HDF\r\n\x1a\n", "file is HDF5, e.g. a Keras .h5", "convert it to TFLite first"),
    (b"\x1f\x8b", "file is gzip-compressed", "decompress it first"),
    (b"\x93NUMPY", "file is a NumPy .npy array", _PASS_A_MODEL),
    (b"GGUF", "file is a GGUF model", _PASS_A_MODEL),
    (b"\x7fELF", "file is an ELF executable", _PASS_A_MODEL),
    (b"%PDF", "file is a PDF document", _PASS_A_MODEL),
    (b"version https://git-lfs", "file is a Git LFS pointer, not the model itself",
     "run `git lfs pull` to fetch the real file"),
)
# ONNX ModelProto fields and their wire types (0 varint, 2 length-delimited); onnx.proto.
_MODEL_PROTO_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2,
                       26: 2}
_MAX_FIELD = 64  # tolerate fields a newer onnx.proto may add, up to here


def model_error(path: Path, problem: str, fix: str) -> InvalidModelError:
    """The one-line error for a bad model file: ``<path>: <problem>; <fix>``."""
    return InvalidModelError(f"{path}: {problem}; {fix}")


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise model_error(path, "is a directory, not a model file", _PASS_A_MODEL)
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise model_error(path, "no such file", "check the path") from None
    except OSError as exc:
        raise model_error(path, f"cannot read the file ({exc.strerror or exc})",
                          "check that it exists and is readable") from None
    if size == 0:
        raise model_error(path, "empty file (0 bytes)", "re-download or re-export the model")
    return head, size


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def onnx_overrun(data: bytes, size: int) -> int | None:
    """Walk the top-level ModelProto fields in ``data`` (the first bytes of a ``size``-byte
    file). Return None if it looks like ONNX, -1 if not, or the byte count a field needs
    when it runs past the end of the file (a truncated ONNX file)."""
    first = _varint(data, 1) if data[:1] == b"\x08" else None
    if first is None or not 1 <= first[0] <= 100:  # field 1 (ir_version) always comes first
        return -1
    pos = first[1]
    while pos < min(len(data), size):
        tag = _varint(data, pos)
        if tag is None:
            return None if len(data) < size else -1  # cut by the head window, or garbage
        field, wire = tag[0] >> 3, tag[0] & 7
        expected = _MODEL_PROTO_FIELDS.get(field)
        if (expected is not None and wire != expected) or (
                expected is None and (field > _MAX_FIELD or wire not in (0, 1, 2, 5))):
            return -1
        pos = tag[1]
        if wire == 0:
            value = _varint(data, pos)
            if value is None:
                return None if len(data) < size else -1
            pos = value[1]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            length = _varint(data, pos)
            if length is None:
                return None if len(data) < size else -1
            pos = length[1] + length[0]
        if pos > size:
            return pos
    return None


def _describe(head: bytes) -> tuple[str, str]:
    """What a non-model file seems to be, and what to do instead."""
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            return what, fix
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return ("file is a Python pickle, e.g. a PyTorch or scikit-learn checkpoint",
                "export it to ONNX first")
    if head[4:8] == b"ORTM":
        return "file is an ONNX Runtime .ort model", "pass the .onnx it was made from"
    if len(head) >= 10 and head[8:10] == b'{"':
        return "file looks like safetensors weights", "export the model to ONNX first"
    text = head[:256]
    if text.strip() and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        first_line = text.decode("ascii").strip().splitlines()[0][:40]
        return f"file is plain text: {first_line!r}", _PASS_A_MODEL
    shown = " ".join(f"{b:02x}" for b in head[:8])
    return f"unrecognised content, starts with bytes {shown}", _PASS_A_MODEL


def detect_format(path: Path) -> str:
    """"onnx" or "tflite", from the file's bytes (the extension is ignored).

    Raises InvalidModelError naming the file for a missing, empty or non-model file.
    """
    path = Path(path)
    head, size = _read_head(path)
    if head[4:8] == b"TFL3":
        return "tflite"
    if onnx_overrun(head, size) != -1:
        return "onnx"
    what, fix = _describe(head)
    raise model_error(path, f"not an ONNX or TFLite model ({what})", fix)


def inspect_model(path: Path) -> ModelSummary:
    """Summarise an ONNX or TFLite file: inputs, outputs, ops, weights, quantization.

    Every problem with the file (missing, empty, truncated, not a model, fails the ONNX
    checker) raises InvalidModelError with a one-line message naming the file.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "onnx":
        from devtrack.inspection.onnx_inspect import inspect_onnx

        return inspect_onnx(path)
    from devtrack.inspection.tflite_inspect import inspect_tflite

    return inspect_tflite(path)


__all__ = ["FORMATS", "detect_format", "inspect_model", "model_error"]
