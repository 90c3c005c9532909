"""One small protocol over the inference runtimes; each runtime module is imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devtrack.core.summary import TensorInfo
from devtrack.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

FORMATS = ("onnx", "tflite")
ORT_GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
ORT_EXECUTION_MODES = ("sequential", "parallel")
LITERT_APIS = ("interpreter", "compiled_model")


@dataclass(frozen=True)
class RuntimeOptions:
    """How to create a session; the runtime-specific fields are ignored by the other runtime."""

    threads: int = 1  # intra-op threads (onnxruntime) / num_threads (LiteRT)
    ort_graph_optimization_level: str = "all"  # one of ORT_GRAPH_OPTIMIZATION_LEVELS
    ort_execution_mode: str = "sequential"  # one of ORT_EXECUTION_MODES
    litert_xnnpack: bool = True  # False: builtin kernels only, no default delegates
    litert_api: str = "interpreter"  # one of LITERT_APIS
    op_profile: bool = False  # collect a per-op time profile after the measured loop
    # onnxruntime's intra-op threads spin while idle by default. Two sessions loaded side by
    # side (the interleaved A/B mode) must not: the idle one's spinning threads steal the
    # cores of the one being timed, which spread 2-thread pair ratios to 0.8-1.5.
    ort_allow_spinning: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 1:
            raise UsageError(f"threads must be an integer >= 1, got {self.threads!r}")
        for name, value, allowed in (
            ("ort_graph_optimization_level", self.ort_graph_optimization_level,
             ORT_GRAPH_OPTIMIZATION_LEVELS),
            ("ort_execution_mode", self.ort_execution_mode, ORT_EXECUTION_MODES),
            ("litert_api", self.litert_api, LITERT_APIS),
        ):
            if value not in allowed:
                raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown runtime option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**data)


class RuntimeSession(Protocol):
    """A loaded model, ready to run. ``run`` is what the measured loop times."""

    runtime_name: str  # "onnxruntime", "ai-edge-litert", "tflite-runtime", "tensorflow"
    runtime_version: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One inference; returns the outputs in ``outputs`` order."""
        ...

    def bind(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        """Put ``feeds`` in place and return the call the measured loop times.

        That call is the runtime's inference call alone (onnxruntime ``run``, LiteRT
        ``invoke`` / ``run_by_index``), as LiteRT's benchmark_model and onnxruntime_perf_test
        time it: copying inputs in and outputs out is the app's cost, not the model's.
        """
        ...

    def start_op_profile(self) -> bool:
        """Start recording per-op times for the following ``run`` calls; False if unsupported."""
        ...

    def end_op_profile(self) -> list[dict[str, Any]] | None:
        """Stop recording; top ops by time ``[{op, calls, total_ms, pct}]``, None if unsupported."""
        ...


def check_format(fmt: str) -> str:
    """``fmt`` normalised ("ONNX", ".tflite" → "onnx", "tflite"), or a UsageError."""
    norm = fmt.lower().lstrip(".")
    if norm not in FORMATS:
        raise UsageError(f"unknown model format {fmt!r}; devtrack runs {', '.join(FORMATS)}")
    return norm


def load_runtime(fmt: str, options: RuntimeOptions) -> tuple[str, str]:
    """Import the runtime for ``fmt``; returns (runtime name, version).

    Separate from ``open_session`` so the worker can time the import on its own.
    Raises RuntimeUnavailableError when no runtime for the format is installed.
    """
    if check_format(fmt) == "onnx":
        from devtrack.runtimes import onnxruntime_rt

        return onnxruntime_rt.load_runtime()
    from devtrack.runtimes import litert_rt

    return litert_rt.load_runtime(options)


def open_session(path: Path, fmt: str, options: RuntimeOptions) -> RuntimeSession:
    """Load ``path`` in the runtime for ``fmt`` with ``options``.

    Raises RuntimeUnavailableError (runtime missing, or an op it lacks, named in the message)
    or InvalidModelError (not a model file the runtime can parse).
    """
    if check_format(fmt) == "onnx":
        from devtrack.runtimes import onnxruntime_rt

        return onnxruntime_rt.OrtSession(Path(path), options)
    from devtrack.runtimes import litert_rt

    return litert_rt.open_litert(Path(path), options)
