"""The worker protocol: job and result types, the sample encoding and the protocol version.

What a parent (local ``bench/runner.py``, or a remote runner over SSH) sends a worker and what
the worker sends back, as JSON. Both sides check ``protocol``: a worker refuses a job of
another version, and a parent refuses a result of another version, each with one line
naming both versions (a device may cache an older worker). Only the standard library and
``devtrack.errors`` are imported here, so the module ships inside the worker's zipapp; numpy
is imported by the sample functions that need it.

The sample encoding is the one place that knows how latency samples, ratios and per-sample
predictions travel and are stored: a *blob* is the raw little-endian bytes the database keeps
(``runs.samples``: float32 milliseconds; ``evaluations.predictions``: int32), its *text* the
base64 of that blob, as JSON carries it. Stored blobs are unchanged by this module.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from devtrack.errors import ProtocolMismatchError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PROTOCOL_VERSION = 1
PROTOCOL_KEY = "protocol"  # the version's key in every job and result
RESULT_VERSION = 1  # the single result's layout (``result_version``, written since the start)
SAMPLES_DTYPE = "<f4"  # latency samples and ratios: float32 little-endian
PREDICTIONS_DTYPE = "<i4"  # top-1 class per evaluated sample: int32 little-endian
SAMPLES_ENCODING = "base64 float32 little-endian, milliseconds"


# --- the version --------------------------------------------------------------------------

def version_problem(payload: dict[str, Any], what: str) -> str | None:
    """Why ``payload`` (a job or a result) cannot be used here, or None when its version is
    this one's."""
    version = payload.get(PROTOCOL_KEY)
    if version == PROTOCOL_VERSION:
        return None
    if version is None:
        return (f"the {what} carries no protocol version; this devtrack worker protocol is "
                f"version {PROTOCOL_VERSION} (the other side is an older devtrack: update it)")
    return (f"the {what} is worker protocol version {version!r}; this side speaks version "
            f"{PROTOCOL_VERSION}: run the same devtrack version on both sides")


def check_version(payload: dict[str, Any], what: str) -> None:
    """Raise ProtocolMismatchError unless ``payload`` is of this protocol version."""
    problem = version_problem(payload, what)
    if problem is not None:
        raise ProtocolMismatchError(problem)


def stamped(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with this protocol version (a copy)."""
    return {**payload, PROTOCOL_KEY: PROTOCOL_VERSION}


# --- the sample encoding ------------------------------------------------------------------

def blob_to_text(blob: bytes) -> str:
    """A stored blob as JSON carries it (base64)."""
    return base64.b64encode(blob).decode("ascii")


def text_to_blob(text: str) -> bytes:
    """The blob a JSON text carries; ValueError when ``text`` is not base64."""
    if not isinstance(text, str):
        raise ValueError("a blob is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"a blob is not base64 text: {exc}") from None


def samples_to_blob(values: Any) -> bytes:
    """Samples (ms) or ratios as the stored blob: float32 little-endian."""
    import numpy as np

    return np.asarray(values, dtype=SAMPLES_DTYPE).tobytes()


def samples_from_blob(blob: bytes | None) -> npt.NDArray[np.float64]:
    """The values of a stored samples blob, as float64; empty for no blob."""
    import numpy as np

    if not blob:
        return np.zeros(0)
    return np.frombuffer(blob, dtype=SAMPLES_DTYPE).astype(np.float64)


def encode_samples(values: Any) -> str:
    """Samples (ms) or ratios as JSON carries them: base64 of the float32 blob."""
    return blob_to_text(samples_to_blob(values))


def decode_samples(text: str) -> npt.NDArray[np.float64]:
    """Inverse of :func:`encode_samples` (float64; every value exactly the float32 sent)."""
    return samples_from_blob(text_to_blob(text))


def predictions_to_blob(values: Any) -> bytes:
    """Per-sample top-1 classes as the stored blob: int32 little-endian."""
    import numpy as np

    return np.asarray(values).astype(PREDICTIONS_DTYPE).tobytes()


def predictions_from_blob(blob: bytes) -> npt.NDArray[np.int32]:
    """The classes of a stored predictions blob."""
    import numpy as np

    return np.frombuffer(blob, dtype=PREDICTIONS_DTYPE)


def encode_predictions(values: Any) -> str:
    """Predictions as JSON carries them: base64 of the int32 blob."""
    return blob_to_text(predictions_to_blob(values))


# --- the job --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasureWindow:
    """How long the measured loop runs (the profile's ``[measurement]``)."""

    warmup_runs: int = 10
    min_runs: int = 50
    min_time_s: float = 2.0
    max_time_s: float = 20.0
    target_rel_ci: float = 0.01
    cooldown_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureWindow:
        return cls(warmup_runs=int(data.get("warmup_runs", cls.warmup_runs)),
                   min_runs=int(data.get("min_runs", cls.min_runs)),
                   min_time_s=float(data.get("min_time_s", cls.min_time_s)),
                   max_time_s=float(data.get("max_time_s", cls.max_time_s)),
                   target_rel_ci=float(data.get("target_rel_ci", cls.target_rel_ci)),
                   cooldown_s=float(data.get("cooldown_s", cls.cooldown_s)))


@dataclass(frozen=True)
class MeasureJob:
    """One artifact measured once: what ``python -m devtrack.bench.worker`` runs.

    ``options`` are the runtime's (``runtimes.RuntimeOptions`` as a dict); ``input_specs`` and
    ``fills`` are ``InputSpec.to_dict`` / ``FillSpec.to_dict``; ``evaluation`` is the part
    ``evaluation.evaluation_job`` builds; ``progress_path`` is where the worker writes its
    phase (set by the runner). The side-by-side modes (``pair``, ``op_pair`` keys) carry the
    same version but are built by ``pairing.py`` and ``explaining.py``.
    """

    artifact_path: str
    sha256: str
    format: str
    options: dict[str, Any]
    measurement: MeasureWindow = field(default_factory=MeasureWindow)
    input_specs: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    op_profile: bool = False
    evaluation: dict[str, Any] | None = None
    progress_path: str | None = None
    protocol: int = PROTOCOL_VERSION

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            PROTOCOL_KEY: self.protocol, "artifact_path": self.artifact_path,
            "sha256": self.sha256, "format": self.format,
            "input_specs": list(self.input_specs), "fills": list(self.fills),
            "options": dict(self.options), "measurement": self.measurement.to_dict(),
            "seed": self.seed, "op_profile": self.op_profile,
        }
        if self.evaluation is not None:
            data["evaluation"] = self.evaluation
        if self.progress_path is not None:
            data["progress_path"] = self.progress_path
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureJob:
        """The job in ``data``; ProtocolMismatchError for another version, ValueError naming
        the key for a malformed one."""
        check_version(data, "job")
        for key in ("artifact_path", "format"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"job.{key}: missing or not text")
        for key in ("options", "measurement"):
            if not isinstance(data.get(key, {}), dict):
                raise ValueError(f"job.{key}: not a table")
        for key in ("input_specs", "fills"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"job.{key}: not a list")
        return cls(artifact_path=data["artifact_path"], sha256=str(data.get("sha256") or ""),
                   format=data["format"], options=dict(data.get("options") or {}),
                   measurement=MeasureWindow.from_dict(data.get("measurement") or {}),
                   input_specs=list(data.get("input_specs") or []),
                   fills=list(data.get("fills") or []), seed=int(data.get("seed", 0)),
                   op_profile=bool(data.get("op_profile", False)),
                   evaluation=data.get("evaluation"), progress_path=data.get("progress_path"),
                   protocol=int(data[PROTOCOL_KEY]))


# --- the result -----------------------------------------------------------------------------

@dataclass
class RunResult:
    """What a measurement returns, worker's or runner's: ``status`` "ok", "failed" or
    "aborted", a one-line ``error``, and what the worker got far enough to measure.

    ``samples_ms`` is the encoded text (:func:`decode_samples`); ``isolation`` is the runner's
    account of the process (threads, pid, wall time, …). Keys this type does not name are kept
    in ``extra`` and written back by :meth:`to_dict`, so nothing a worker sends is lost.
    """

    status: str = "failed"
    error: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    phases: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    samples_ms: str | None = None
    stop_reason: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    op_profile: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    isolation: dict[str, Any] | None = None
    phase: str | None = None  # the phase a failed worker was in
    protocol: int = PROTOCOL_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_blob(self) -> bytes | None:
        """The samples as stored (``runs.samples``), or None when there are none."""
        return text_to_blob(self.samples_ms) if self.samples_ms else None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data[PROTOCOL_KEY] = data.pop("protocol")
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """The result in ``data`` as it is (the runner checks the version when it reads a
        worker's file: :func:`check_version`)."""
        known = {f.name for f in fields(cls)} - {"extra", "protocol"}
        values = {key: data[key] for key in known if data.get(key) is not None}
        values["warnings"] = [str(w) for w in data.get("warnings") or []]
        extra = {key: value for key, value in data.items()
                 if key not in known and key != PROTOCOL_KEY}
        return cls(**values, protocol=int(data.get(PROTOCOL_KEY) or PROTOCOL_VERSION),
                   extra=extra)
