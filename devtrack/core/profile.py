"""Device profiles as plain data: schema, defaults, one-line validation errors, a stable hash."""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NoReturn

from devtrack.core.adb_target import AdbSettings, device_path_problem, is_adb
from devtrack.core.alerts import AlertSettings, validate_alerts
from devtrack.core.limits import BOUNDS, longest_max_time_s, worker_need_text, worker_seconds
from devtrack.core.targets import LOCAL, SshSettings, is_ssh, target_problem
from devtrack.errors import ProfileError, UsageError

FORMATS = ("onnx", "tflite")
ORT_GRAPH_OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
ORT_EXECUTION_MODES = ("sequential", "parallel")
LITERT_APIS = ("interpreter", "compiled_model")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

MAX_REPEATS = 200  # of a side-by-side measurement: 200 × a profile's min_time_s is an hour


@dataclass(frozen=True)
class ExecutionSettings:
    """Where and how the worker process runs."""

    target: str = LOCAL  # "local", "ssh://[user@]host[:port]" (core/targets.py) or "adb://SERIAL"
    threads: int = 1  # intra-op threads given to the runtime, >= 1
    cpu_affinity: tuple[int, ...] = ()  # sorted core ids; () = no pinning
    memory_limit_mb: int | None = None  # resident-memory cap in MiB; None = no cap
    timeout_s: float = 120.0  # wall-clock limit for the whole worker, > 0

    def effective_affinity(self, available: Iterable[int]) -> tuple[int, ...]:
        """The cores to pin to on a host that offers ``available`` cores; () = do not pin.

        A profile describes the device, not this host, so its core ids may not exist here
        (``phone-4t`` asks for 0-3 on a 2-core CI machine). The requested cores that exist
        are kept; if none exist, the lowest available cores are used, as many as requested.
        """
        if not self.cpu_affinity:
            return ()
        have = sorted(set(available))
        kept = tuple(c for c in self.cpu_affinity if c in have)
        return kept or tuple(have[: len(self.cpu_affinity)])


@dataclass(frozen=True)
class OrtSettings:
    """onnxruntime session options."""

    graph_optimization_level: str = "all"  # one of ORT_GRAPH_OPTIMIZATION_LEVELS
    execution_mode: str = "sequential"  # one of ORT_EXECUTION_MODES


@dataclass(frozen=True)
class LiteRTSettings:
    """LiteRT interpreter options."""

    xnnpack: bool = True  # use the XNNPACK delegate
    api: str = "interpreter"  # one of LITERT_APIS


@dataclass(frozen=True)
class MeasurementSettings:
    """How long and how often to measure; see ARCHITECTURE.md, "Measurement"."""

    warmup_runs: int = 10  # >= 0, untimed inferences after the cold one
    min_runs: int = 50  # >= 1
    min_time_s: float = 2.0  # >= 0, <= max_time_s
    max_time_s: float = 20.0  # > 0; execution.timeout_s >= core.limits.worker_seconds
    target_rel_ci: float = 0.01  # stop when the 95% CI of the median is within this fraction
    cooldown_s: float = 0.0  # >= 0, idle pause before measuring


@dataclass(frozen=True)
class Budgets:
    """Limits a release must meet on this profile; None = not checked. All values >= 0."""

    latency_p90_ms: float | None = None
    peak_memory_mb: float | None = None
    model_size_mb: float | None = None
    min_accuracy: float | None = None
    max_latency_regression_pct: float | None = None  # vs the deployed release, in percent
    max_accuracy_drop: float | None = None  # vs the deployed release, absolute

    def items(self) -> dict[str, float]:
        """The budgets that are set, by key."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Profile:
    """One validated device profile. Section attribute names equal the TOML table names."""

    name: str
    description: str = ""
    formats: tuple[str, ...] = FORMATS  # in FORMATS order, no duplicates, not empty
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    onnxruntime: OrtSettings = field(default_factory=OrtSettings)
    litert: LiteRTSettings = field(default_factory=LiteRTSettings)
    measurement: MeasurementSettings = field(default_factory=MeasurementSettings)
    budgets: Budgets = field(default_factory=Budgets)
    # Policy, not a setting of a run: not in to_dict(), the hash or equality, so an alert
    # URL (often carrying a token) never enters a run's stored snapshot.
    alerts: AlertSettings = field(default_factory=AlertSettings, compare=False)
    # How to reach a phone (adb client, benchmark_model's path there): not a condition of
    # a run (the target is), so not in to_dict(), the hash or equality.
    adb: AdbSettings = field(default_factory=AdbSettings, compare=False)
    # How to reach an SSH device (interpreter, ssh options, workdir, timeouts): not a
    # condition of a run (the target is), and options may name private key files.
    ssh: SshSettings = field(default_factory=SshSettings, compare=False)
    # Where it came from; not part of to_dict(), the hash or equality.
    source: str = field(default="", compare=False)  # file path or other label
    origin: str = field(default="", compare=False)  # "workspace" | "shipped" | "file" | ""

    def runs_format(self, fmt: str) -> bool:
        """Whether releases of format ``fmt`` ("onnx", "tflite") are benchmarked here."""
        return fmt.lower().lstrip(".") in self.formats

    def to_dict(self) -> dict[str, Any]:
        """Canonical snapshot with every default filled in; ``validate_profile`` reads it back."""
        data = asdict(self)
        del data["source"], data["origin"], data["alerts"], data["adb"], data["ssh"]
        data["formats"] = list(self.formats)
        data["execution"]["cpu_affinity"] = list(self.execution.cpu_affinity)
        return data

    @property
    def hash(self) -> str:
        """sha256 (hex) of the canonical settings; ``description`` is not a setting."""
        data = self.to_dict()
        del data["description"]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def conditions_hash(self) -> str:
        """sha256 (hex) of the conditions alone (``core.conditions``): a run's identity."""
        from devtrack.core.conditions import conditions_hash

        return conditions_hash(self.to_dict())


_SECTIONS: dict[str, type] = {
    "execution": ExecutionSettings,
    "onnxruntime": OrtSettings,
    "litert": LiteRTSettings,
    "measurement": MeasurementSettings,
    "budgets": Budgets,
}
_TOP_KEYS = ("name", "description", "formats", *_SECTIONS, "alerts", "adb", "ssh")
_SSH_KEYS = ("python", "options", "workdir", "connect_timeout_s", "lock_timeout_s")


def validate_profile(data: Mapping[str, Any], source: str) -> Profile:
    """Check a parsed profile table and fill in defaults.

    Raises ProfileError with one line, ``SOURCE: KEY.PATH: problem``, on the first problem.
    """
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: expected a table of settings, got {_kind(data)}")
    top = _Table(source, "", data, _TOP_KEYS)
    if "name" not in data:
        top.fail("name", 'missing; every profile needs name = "..." equal to its file name')
    name = top.string("name", "")
    if not NAME_PATTERN.match(name):
        top.fail("name", f"{name!r} is not a valid profile name; use letters, digits, '.', "
                         "'_' and '-', starting with a letter or digit")
    tables = {key: _Table(source, key, top.table(key), [f.name for f in fields(cls)])
              for key, cls in _SECTIONS.items()}
    execution = _execution(tables["execution"])
    measurement = _measurement(tables["measurement"], execution, tables["execution"])
    ort, lite, budgets = tables["onnxruntime"], tables["litert"], tables["budgets"]
    return Profile(
        name=name,
        description=top.string("description", ""),
        formats=_formats(top),
        execution=execution,
        onnxruntime=OrtSettings(
            graph_optimization_level=ort.choice(
                "graph_optimization_level", "all", ORT_GRAPH_OPTIMIZATION_LEVELS),
            execution_mode=ort.choice("execution_mode", "sequential", ORT_EXECUTION_MODES),
        ),
        litert=LiteRTSettings(
            xnnpack=lite.boolean("xnnpack", True),
            api=lite.choice("api", "interpreter", LITERT_APIS),
        ),
        measurement=measurement,
        budgets=Budgets(**{
            f.name: budgets.bounded(f.name, None) for f in fields(Budgets)
        }),
        alerts=_alerts(data.get("alerts"), source),
        adb=_adb(_Table(source, "adb", top.table("adb"),
                        ("benchmark_model", "adb", "lock_timeout_s")),
                 execution, top, lite.choice("api", "interpreter", LITERT_APIS)),
        ssh=_ssh(_Table(source, "ssh", top.table("ssh"), _SSH_KEYS), execution, top),
        source=source,
    )


def _alerts(data: Any, source: str) -> AlertSettings:
    if data is None:
        return AlertSettings()
    try:
        return validate_alerts(data, source)
    except UsageError as exc:
        raise ProfileError(str(exc)) from None


def _adb(t: _Table, execution: ExecutionSettings, top: _Table, api: str) -> AdbSettings:
    """The ``[adb]`` table: only with an adb:// target, whose profile must be one
    benchmark_model can honour (TFLite only, the Interpreter API, no memory cap)."""
    if not is_adb(execution.target):
        if t.data:
            top.fail("adb", f"is only used with execution.target = \"adb://SERIAL\" (target "
                            f"is {execution.target!r}); remove [adb] or set the target")
        return AdbSettings()
    formats = top.array("formats", list(FORMATS))
    if "onnx" in formats:
        top.fail("formats", "an adb:// target runs LiteRT's benchmark_model, which measures "
                            "tflite models only; set formats = [\"tflite\"]")
    if api != "interpreter":
        top.fail("litert.api", f"{api!r}: benchmark_model on an adb:// target runs the "
                               "Interpreter API; set api = \"interpreter\"")
    if execution.memory_limit_mb is not None:
        top.fail("execution.memory_limit_mb", "cannot be enforced on a phone through "
                                              "benchmark_model; remove it for an adb:// target")
    binary = t.string("benchmark_model", AdbSettings.benchmark_model)
    problem = device_path_problem(binary)
    if problem:
        t.fail("benchmark_model", problem)
    client = t.string("adb", AdbSettings.adb)
    if not client or client.startswith("-") or "\n" in client or "\0" in client:
        t.fail("adb", f"{_show(client)} is not a program; give \"adb\" or a path to it")
    return AdbSettings(benchmark_model=binary, adb=client,
                       lock_timeout_s=t.bounded("lock_timeout_s", AdbSettings.lock_timeout_s))


def _formats(top: _Table) -> tuple[str, ...]:
    values = top.array("formats", list(FORMATS))
    if not values:
        top.fail("formats", f"is empty; list at least one of: {', '.join(FORMATS)}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            top.fail(f"formats[{i}]", f"expected a string, got {_kind(value)}")
        if value not in FORMATS:
            top.fail(f"formats[{i}]", _unknown_value(value, FORMATS))
        if value in values[:i]:
            top.fail(f"formats[{i}]", f"{value!r} is listed twice")
    return tuple(f for f in FORMATS if f in values)


def _ssh(t: _Table, execution: ExecutionSettings, top: _Table) -> SshSettings:
    """The ``[ssh]`` table: only with an ssh:// target, every value checked."""
    if not is_ssh(execution.target):
        if t.data:
            top.fail("ssh", f"is only used with execution.target = \"ssh://[user@]host\" "
                            f"(target is {execution.target!r}); remove [ssh] or set the target")
        return SshSettings()
    python = t.string("python", SshSettings.python)
    if not python or python.startswith("-") or any(c.isspace() for c in python):
        t.fail("python", f"{_show(python)} is not an interpreter; give a program name or "
                         "path without spaces, e.g. \"python3\" or \"/usr/bin/python3\"")
    options = t.array("options", [])
    for i, option in enumerate(options):
        if not isinstance(option, str) or not option or "\n" in option or "\0" in option:
            t.fail(f"options[{i}]", f"expected a non-empty string (one ssh argument), got "
                                    f"{_kind(option)} {_show(option)}")
    workdir = t.string("workdir", "")
    if "\n" in workdir or "\0" in workdir:
        t.fail("workdir", "must be a single-line path")
    return SshSettings(
        python=python, options=tuple(options), workdir=workdir,
        connect_timeout_s=t.bounded("connect_timeout_s", SshSettings.connect_timeout_s),
        lock_timeout_s=t.bounded("lock_timeout_s", SshSettings.lock_timeout_s),
    )


def _execution(t: _Table) -> ExecutionSettings:
    target = t.string("target", LOCAL)
    problem = target_problem(target)
    if problem:
        t.fail("target", problem)
    cores = t.array("cpu_affinity", [])
    core_ids = BOUNDS["execution.cpu_affinity"]
    for i, core in enumerate(cores):
        if not _is_int(core) or core_ids.problem(core):
            t.fail(f"cpu_affinity[{i}]", f"expected a core id (integer {core_ids.text()}), "
                                         f"got {_show(core)}")
        if core in cores[:i]:
            t.fail(f"cpu_affinity[{i}]", f"core {core} is listed twice")
    memory = t.get("memory_limit_mb")
    if memory is not None:
        memory = int(t.bounded("memory_limit_mb", 0))
    return ExecutionSettings(
        target=target,
        threads=int(t.bounded("threads", 1)),
        cpu_affinity=tuple(sorted(cores)),
        memory_limit_mb=memory,
        timeout_s=t.bounded("timeout_s", 120.0),
    )


def _measurement(t: _Table, execution: ExecutionSettings,
                 execution_table: _Table) -> MeasurementSettings:
    rel_ci = t.get("target_rel_ci")
    if _is_number(rel_ci) and rel_ci >= 1:
        t.fail("target_rel_ci", f"{rel_ci} is not a fraction below 1; write 0.01 for 1%")
    m = MeasurementSettings(
        warmup_runs=int(t.bounded("warmup_runs", 10)),
        min_runs=int(t.bounded("min_runs", 50)),
        min_time_s=t.bounded("min_time_s", 2.0),
        max_time_s=t.bounded("max_time_s", 20.0),
        target_rel_ci=t.bounded("target_rel_ci", 0.01),
        cooldown_s=t.bounded("cooldown_s", 0.0),
    )
    if m.min_time_s > m.max_time_s:
        t.fail("min_time_s", f"{m.min_time_s} is greater than measurement.max_time_s "
                             f"({m.max_time_s})")
    _check_timeout_fits(execution, m, execution_table.fail)
    return m


def _check_timeout_fits(execution: ExecutionSettings, m: MeasurementSettings,
                       fail: Callable[[str, str], NoReturn]) -> None:
    """``fail("timeout_s", why)`` unless the worker fits in ``execution.timeout_s``
    (``core.limits.worker_seconds``: never raised behind the user's back)."""
    need = worker_seconds(m.max_time_s, m.cooldown_s)
    if execution.timeout_s < need:
        longest = max(0.0, longest_max_time_s(execution.timeout_s, m.cooldown_s))
        fail("timeout_s", f"{execution.timeout_s:g} s is too short: "
                          f"{worker_need_text(m.max_time_s, m.cooldown_s)}; set timeout_s to "
                          f"at least {math.ceil(need * 10 - 1e-9) / 10:g} or "
                          f"measurement.max_time_s to at most {math.floor(longest * 10) / 10:g}")


class _Table:
    """One TOML table being read: rejects unknown keys and wrong types, names the key path."""

    def __init__(self, source: str, prefix: str, data: Mapping[str, Any],
                 valid: Sequence[str]) -> None:
        self.source, self.prefix, self.data = source, prefix, data
        for key in data:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"valid keys: {', '.join(valid)}")
                self.fail(str(key), f"unknown key ({hint})")

    def fail(self, key: str, problem: str) -> NoReturn:
        path = f"{self.prefix}.{key}" if self.prefix else key
        raise ProfileError(f"{self.source}: {path}: {problem}")

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def table(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, f"expected a table ([{key}]), got {_kind(value)} {_show(value)}")
        return value

    def array(self, key: str, default: list[Any]) -> list[Any]:
        value = self.data.get(key, default)
        if not isinstance(value, list | tuple):
            self.fail(key, f"expected an array, got {_kind(value)} {_show(value)}")
        return list(value)

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_kind(value)} {_show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_kind(value)} {_show(value)}")
        return value

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.string(key, default)
        if value not in allowed:
            self.fail(key, _unknown_value(value, allowed))
        return value

    def bounded(self, key: str, default: Any) -> Any:
        """A number within ``core.limits.BOUNDS`` for this key; an integer where it says so.
        ``default`` when the key is absent (None: an optional setting left unset)."""
        value = self.data.get(key, default)
        if value is None:
            return None
        bound = BOUNDS[f"{self.prefix}.{key}"]
        if bound.integer and not _is_int(value):
            self.fail(key, f"expected an integer, got {_kind(value)} {_show(value)}")
        if not _is_number(value):
            self.fail(key, f"expected a number, got {_kind(value)} {_show(value)}")
        problem = bound.problem(value)
        if problem:
            self.fail(key, f"{problem} (allowed: {bound.text()})")
        return int(value) if bound.integer else float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # bool is an int subclass


def _is_number(value: Any) -> bool:
    """An integer (any size: TOML has no limit) or a finite float."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _unknown_value(value: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown value {value!r}; allowed: {', '.join(allowed)}{hint}"


def _kind(value: Any) -> str:
    """The TOML name of a value's type, for messages."""
    if value is None:
        return "nothing"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                       (list, "array"), (tuple, "array"), (Mapping, "table")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"({text if len(text) <= 40 else text[:37] + '...'})"
