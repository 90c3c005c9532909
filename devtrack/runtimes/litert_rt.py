"""LiteRT (Interpreter or CompiledModel API) behind the RuntimeSession protocol.

Falls back to ``tflite_runtime``, then ``tensorflow.lite``, when ``ai_edge_litert`` is absent
(Interpreter API only). None of LiteRT's Python APIs exposes a per-op profiler, so
``end_op_profile`` returns None here.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.core.summary import Dim, TensorInfo
from devtrack.errors import InvalidModelError, RuntimeUnavailableError
from devtrack.runtimes import RuntimeOptions, RuntimeSession

_BUILTIN_CUSTOM = 32  # BuiltinOperator.CUSTOM in the TFLite schema
_MISSING_OP_PATTERNS = (
    re.compile(r"unresolved custom op: (?P<op>[A-Za-z0-9_-]+)"),
    re.compile(r"Didn't find op for builtin opcode '(?P<op>\w+)' version '(?P<version>\d+)'"),
)
# Element types TensorBuffer (the CompiledModel API's only way in and out) can carry.
_COMPILED_MODEL_DTYPES = frozenset({"float32", "float16", "int32", "int8", "uint8", "bool"})


@dataclass(frozen=True)
class _Backend:
    name: str  # "ai-edge-litert" | "tflite-runtime" | "tensorflow"
    version: str
    interpreter: Any  # the Interpreter class
    resolver: Any  # the OpResolverType enum


_backend: _Backend | None = None


def _find_backend() -> _Backend:
    global _backend
    if _backend is not None:
        return _backend
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as litert

        _backend = _Backend("ai-edge-litert", ai_edge_litert.__version__, litert.Interpreter,
                            litert.OpResolverType)
        return _backend
    except ImportError:
        pass
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as tflrt

        _backend = _Backend("tflite-runtime", tflite_runtime.__version__, tflrt.Interpreter,
                            tflrt.OpResolverType)
        return _backend
    except ImportError:
        pass
    try:
        import tensorflow as tf

        _backend = _Backend("tensorflow", tf.__version__, tf.lite.Interpreter,
                            tf.lite.experimental.OpResolverType)
        return _backend
    except ImportError:
        pass
    raise RuntimeUnavailableError(
        "no TFLite runtime is installed: pip install ai-edge-litert "
        "(or tflite-runtime, or tensorflow)")


def load_runtime(options: RuntimeOptions) -> tuple[str, str]:
    """Import the TFLite runtime ``options`` asks for; returns (name, version)."""
    backend = _find_backend()
    if options.litert_api == "compiled_model":
        if backend.name != "ai-edge-litert":
            raise RuntimeUnavailableError(
                f"the LiteRT CompiledModel API needs ai-edge-litert; only {backend.name} "
                f"{backend.version} is installed (pip install ai-edge-litert, or use "
                f"litert api = \"interpreter\")")
        import ai_edge_litert.compiled_model  # noqa: F401  (timed as part of the import)
    return backend.name, backend.version


def open_litert(path: Path, options: RuntimeOptions) -> RuntimeSession:
    """Open ``path`` with the API ``options.litert_api`` names."""
    load_runtime(options)
    backend = _find_backend()
    if options.litert_api == "compiled_model":
        return LiteRTCompiledModelSession(path, options, backend)
    return LiteRTInterpreterSession(path, options, backend)


def _model_info(path: Path) -> tuple[dict[str, list[Dim]], list[str]]:
    """Shape signatures of the main signature's inputs (-1 → None) and the custom op names.

    Read through mmap so only the touched metadata pages count towards the load peak.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        # Parsed in a helper so every view into ``buf`` is gone before the mmap closes.
        return _parse_model_info(buf)


def _parse_model_info(buf: mmap.mmap) -> tuple[dict[str, list[Dim]], list[str]]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(buf, 0)
    custom = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _BUILTIN_CUSTOM and code.CustomCode():
            custom.append(code.CustomCode().decode())
    graph = model.Subgraphs(0)
    named: list[tuple[str, int]]
    if model.SignatureDefsLength():
        sig = model.SignatureDefs(0)
        graph = model.Subgraphs(sig.SubgraphIndex())
        named = [(sig.Inputs(j).Name().decode(), sig.Inputs(j).TensorIndex())
                 for j in range(sig.InputsLength())]
    else:
        named = [(graph.Tensors(t).Name().decode(), int(t))
                 for t in (graph.Inputs(i) for i in range(graph.InputsLength()))]
    shapes: dict[str, list[Dim]] = {}
    for name, index in named:
        tensor = graph.Tensors(index)
        if tensor.ShapeSignatureLength():
            dims = [tensor.ShapeSignature(j) for j in range(tensor.ShapeSignatureLength())]
        else:
            dims = [tensor.Shape(j) for j in range(tensor.ShapeLength())]
        shapes[name] = [None if int(d) < 0 else int(d) for d in dims]
    return shapes, custom


def _unavailable(backend: _Backend, path: Path, text: str,
                 custom_ops: list[str] | None = None) -> Exception | None:
    """A one-line RuntimeUnavailableError naming the missing op, or None if none is named."""
    for pattern in _MISSING_OP_PATTERNS:
        match = pattern.search(text)
        if match:
            if "version" in match.groupdict():
                what = f"builtin op {match['op']} version {match['version']}"
                hint = "a newer runtime may have it"
            else:
                what = f"custom op {match['op']}"
                hint = "register it or convert the model without it"
            return RuntimeUnavailableError(f"{backend.name} {backend.version} cannot run "
                                           f"{path.name}: it lacks {what} ({hint})")
    if custom_ops:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        ops = ", ".join(custom_ops)
        return RuntimeUnavailableError(
            f"{backend.name} {backend.version} cannot run {path.name}: it lacks custom op(s) "
            f"{ops} (register them or convert the model without them; LiteRT said: {first})")
    return None


def _load_error(backend: _Backend, path: Path, exc: Exception) -> Exception:
    text = str(exc)
    unavailable = _unavailable(backend, path, text)
    if unavailable is not None:
        return unavailable
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    if isinstance(exc, ValueError) or "identifier" in text or "flatbuffer" in text.lower():
        return InvalidModelError(f"{path}: not a valid TFLite model ({first})")
    return RuntimeUnavailableError(f"{backend.name} {backend.version} could not load "
                                   f"{path.name}: {first}")


class LiteRTInterpreterSession:
    """The classic ``Interpreter``: set_tensor, invoke, get_tensor."""

    def __init__(self, path: Path, options: RuntimeOptions, backend: _Backend) -> None:
        self.runtime_name = backend.name
        self.runtime_version = backend.version
        self.api = "interpreter"
        self._backend = backend
        self._path = path
        kwargs: dict[str, Any] = {"model_path": os.fspath(path), "num_threads": options.threads}
        if not options.litert_xnnpack:
            kwargs["experimental_op_resolver_type"] = \
                backend.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interp = backend.interpreter(**kwargs)
            self._interp.allocate_tensors()  # custom-op errors surface here, at load
        except (ValueError, RuntimeError) as exc:
            raise _load_error(backend, path, exc) from None
        ins = self._interp.get_input_details()
        outs = self._interp.get_output_details()
        self.inputs = [self._info(d) for d in ins]
        self.outputs = [self._info(d) for d in outs]
        self._in = [(d["name"], int(d["index"])) for d in ins]
        self._out = [int(d["index"]) for d in outs]
        self._dynamic = any(t.is_dynamic for t in self.inputs)
        self._shapes = {d["name"]: tuple(int(x) for x in d["shape"]) for d in ins}

    @staticmethod
    def _info(detail: dict[str, Any]) -> TensorInfo:
        sig = detail.get("shape_signature")
        dims = sig if sig is not None and len(sig) == len(detail["shape"]) else detail["shape"]
        return TensorInfo(detail["name"], [None if int(d) < 0 else int(d) for d in dims],
                          np.dtype(detail["dtype"]).name)

    def _resize(self, feeds: dict[str, np.ndarray]) -> None:
        for name, index in self._in:
            shape = tuple(feeds[name].shape)
            if shape != self._shapes[name]:
                self._interp.resize_tensor_input(index, list(shape), strict=True)
                self._shapes[name] = shape
        self._interp.allocate_tensors()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        interp = self._interp
        try:
            if self._dynamic and any(feeds[n].shape != self._shapes[n] for n, _ in self._in):
                self._resize(feeds)
            for name, index in self._in:
                interp.set_tensor(index, feeds[name])
            interp.invoke()
        except RuntimeError as exc:
            raise (_unavailable(self._backend, self._path, str(exc)) or exc) from None
        return [interp.get_tensor(index) for index in self._out]

    def bind(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        self.run(feeds)  # resizes if needed and sets the input tensors
        return self._interp.invoke

    def start_op_profile(self) -> bool:
        return False  # no profiler in LiteRT's Python Interpreter API

    def end_op_profile(self) -> list[dict[str, Any]] | None:
        return None


class LiteRTCompiledModelSession:
    """The CompiledModel API: TensorBuffers written and read around ``run_by_index``."""

    def __init__(self, path: Path, options: RuntimeOptions, backend: _Backend) -> None:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_kernel_mode import CpuKernelMode
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        self.runtime_name = backend.name
        self.runtime_version = backend.version
        self.api = "compiled_model"
        self._backend = backend
        self._path = path
        try:
            shapes, self._custom_ops = _model_info(path)
        except Exception as exc:  # a broken flatbuffer fails in many ways
            raise InvalidModelError(f"{path}: not a valid TFLite model ({exc})") from None
        # kernel_mode None = the default CPU delegate (XNNPACK); BUILTIN = TFLite kernels.
        cpu = CpuOptions(num_threads=options.threads,
                         kernel_mode=None if options.litert_xnnpack else CpuKernelMode.BUILTIN)
        try:
            self._cm = CompiledModel.from_file(
                os.fspath(path), options=Options(HardwareAccelerator.CPU, cpu_options=cpu))
        except (ValueError, RuntimeError) as exc:
            raise _load_error(backend, path, exc) from None
        try:
            # A missing custom op fails only here (output details, buffers), not in from_file.
            self._describe(shapes)
        except RuntimeError as exc:
            raise (_unavailable(backend, path, str(exc), self._custom_ops)
                   or _load_error(backend, path, exc)) from None

    def _describe(self, shapes: dict[str, list[Dim]]) -> None:
        signatures = self._cm.get_signature_list()
        key = next(iter(signatures))
        in_details = self._cm.get_input_tensor_details(key)
        out_details = self._cm.get_output_tensor_details(key)
        self._in_names: list[str] = list(signatures[key]["inputs"])
        self._out_names: list[str] = list(signatures[key]["outputs"])
        self.inputs = [TensorInfo(n, shapes.get(n, list(in_details[n]["shape"])),
                                  str(in_details[n]["dtype"])) for n in self._in_names]
        self.outputs = [TensorInfo(n, list(out_details[n]["shape"]), str(out_details[n]["dtype"]))
                        for n in self._out_names]
        for t in (*self.inputs, *self.outputs):
            if t.dtype not in _COMPILED_MODEL_DTYPES:
                raise RuntimeUnavailableError(
                    f"the LiteRT CompiledModel Python API cannot carry {t.dtype} tensor "
                    f"{t.name!r} of {self._path.name}; use litert api = \"interpreter\"")
        self._dynamic = any(t.is_dynamic for t in self.inputs)
        self._shapes = {n: tuple(int(d) for d in in_details[n]["shape"]) for n in self._in_names}
        self._make_buffers()

    def _make_buffers(self) -> None:
        self._in_bufs = self._cm.create_input_buffers(0)
        self._out_bufs = self._cm.create_output_buffers(0)
        self._out_spec = []
        for buf in self._out_bufs:
            detail = buf.get_tensor_details()
            shape = tuple(int(d) for d in detail["shape"])
            self._out_spec.append((buf, int(np.prod(shape)), np.dtype(detail["dtype"]), shape))

    def _resize(self, feeds: dict[str, np.ndarray]) -> None:
        for index, name in enumerate(self._in_names):
            shape = tuple(feeds[name].shape)
            if shape != self._shapes[name]:
                self._cm.resize_input_tensor(index, list(shape))
                self._shapes[name] = shape
        self._make_buffers()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            if self._dynamic and any(feeds[n].shape != self._shapes[n] for n in self._in_names):
                self._resize(feeds)
            for buf, name in zip(self._in_bufs, self._in_names, strict=True):
                buf.write(feeds[name])
            self._cm.run_by_index(0, self._in_bufs, self._out_bufs)
        except RuntimeError as exc:
            # CompiledModel reports only "Failed to allocate tensors"; the op name goes to
            # the native log, so name the model's custom ops instead.
            raise (_unavailable(self._backend, self._path, str(exc), self._custom_ops)
                   or exc) from None
        return [buf.read(n, dtype).reshape(shape) for buf, n, dtype, shape in self._out_spec]

    def bind(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        self.run(feeds)  # resizes if needed and writes the input buffers
        return functools.partial(self._cm.run_by_index, 0, self._in_bufs, self._out_bufs)

    def start_op_profile(self) -> bool:
        return False  # CompiledModel has no Python profiling hook either

    def end_op_profile(self) -> list[dict[str, Any]] | None:
        return None
