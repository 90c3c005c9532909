"""A profile's conditions (what one warm inference costs depends on) versus its policy.

The principle: a setting is a *condition* when changing it changes what the device executes
for one warm inference, and so the figures a run measures. Everything else is *policy*: how
long and how often to measure (the stopping rule), what to do when a run takes too long or
grows too big (timeout, memory cap), which releases the profile runs, and the budgets and
limits the figures are judged by. Only the conditions form a run's identity: runs of one
profile compare whenever their conditions match, whatever the policy was when they ran.

The memory cap is policy: devtrack enforces it by watching the worker's resident memory and
stopping it above the cap, so a run that completes executed exactly as it would have without
one; the cap only decides whether a run may finish, as the timeout does.

The lists below are frozen into stored data (``runs.conditions_hash``): a change to them
needs a migration that recomputes the column (see ``store.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# (section, key) of every condition, with a why for the README and ``devtrack profiles``.
CONDITIONS: tuple[tuple[str, str, str], ...] = (
    ("execution", "target", "where the worker runs: another device executes differently"),
    ("execution", "threads", "intra-op threads: splits each inference's work"),
    ("execution", "cpu_affinity", "which cores run it (big or little, shared or not)"),
    ("onnxruntime", "graph_optimization_level", "rewrites the graph that is executed"),
    ("onnxruntime", "execution_mode", "runs independent nodes in parallel or not"),
    ("litert", "xnnpack", "the XNNPACK delegate executes the kernels instead of the builtin ones"),
    ("litert", "api", "Interpreter or CompiledModel: different execution paths"),
)
# Every other setting, and why it does not change what one warm inference costs.
POLICY: tuple[tuple[str, str, str], ...] = (
    ("", "description", "text for people"),
    ("", "formats", "which releases the profile runs, not how"),
    ("execution", "memory_limit_mb", "a limit: the worker is stopped above it, never slowed"),
    ("execution", "timeout_s", "a limit on the whole worker's wall time"),
    ("measurement", "warmup_runs", "stopping rule: untimed inferences before the loop"),
    ("measurement", "min_runs", "stopping rule: how many samples at least"),
    ("measurement", "min_time_s", "stopping rule: how long at least"),
    ("measurement", "max_time_s", "stopping rule: how long at most"),
    ("measurement", "target_rel_ci", "stopping rule: how precise the median must be"),
    ("measurement", "cooldown_s", "stopping rule: idle pause before measuring"),
    ("budgets", "latency_p90_ms", "a budget the figures are judged by"),
    ("budgets", "peak_memory_mb", "a budget the figures are judged by"),
    ("budgets", "model_size_mb", "a budget the figures are judged by"),
    ("budgets", "min_accuracy", "a budget the figures are judged by"),
    ("budgets", "max_latency_regression_pct", "a limit the changes are judged by"),
    ("budgets", "max_accuracy_drop", "a limit the changes are judged by"),
)


def _default_snapshot() -> dict[str, Any]:
    from devtrack.core.profile import Profile  # the defaults live with the schema

    return Profile(name="defaults").to_dict()


def conditions_of(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The conditions of a profile snapshot (``Profile.to_dict()`` or a run's stored
    ``profile_snapshot``), keyed ``section.key``; a key an older snapshot lacks takes the
    default it ran with."""
    defaults = _default_snapshot()
    out: dict[str, Any] = {}
    for section, key, _ in CONDITIONS:
        table = snapshot.get(section)
        value = table.get(key) if isinstance(table, Mapping) and key in table else (
            defaults[section][key])
        if key == "cpu_affinity":
            value = sorted(value or [])
        out[f"{section}.{key}"] = value
    return out


def conditions_hash(snapshot: Mapping[str, Any]) -> str:
    """sha256 (hex) of the conditions of ``snapshot``: a run's identity on its profile."""
    text = json.dumps(conditions_of(snapshot), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def describe_conditions(snapshot: Mapping[str, Any]) -> str:
    """``threads 2, no pinning, ORT all/sequential, XNNPACK on, interpreter`` for messages."""
    c = conditions_of(snapshot)
    affinity = c["execution.cpu_affinity"]
    cores = f"cores {','.join(str(x) for x in affinity)}" if affinity else "no pinning"
    return (f"threads {c['execution.threads']}, {cores}, ORT "
            f"{c['onnxruntime.graph_optimization_level']}/{c['onnxruntime.execution_mode']}, "
            f"XNNPACK {'on' if c['litert.xnnpack'] else 'off'}, {c['litert.api']}")


def changed_conditions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``threads 2 → 4``: each condition that differs between two snapshots."""
    a, b = conditions_of(old), conditions_of(new)
    return [f"{key.split('.', 1)[1]} {_show(a[key])} → {_show(b[key])}"
            for key in a if a[key] != b[key]]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
