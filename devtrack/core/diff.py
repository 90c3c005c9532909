"""What changed between two releases: provenance, config, operators, weights and size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devtrack.core.release import Release

MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class FieldChange:
    """One provenance or summary field as it is in release A and in release B."""

    name: str  # e.g. "code commit", "data version"
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "a": self.a, "b": self.b, "changed": self.changed}


@dataclass(frozen=True)
class ConfigDiff:
    """Config keys (flattened to dotted paths) added, removed and changed from A to B."""

    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed,
                "changed": {k: {"a": a, "b": b} for k, (a, b) in self.changed.items()}}


@dataclass(frozen=True)
class OpsDiff:
    """Operator types added, removed and with a changed count, and the node totals."""

    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)
    nodes_a: int = 0
    nodes_b: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed,
                "changed": {k: {"a": a, "b": b} for k, (a, b) in self.changed.items()},
                "nodes_a": self.nodes_a, "nodes_b": self.nodes_b}


@dataclass(frozen=True)
class ReleaseDiff:
    """Everything that differs between release A (the baseline) and release B."""

    a: str  # MODEL@VERSION
    b: str
    same_artifact: bool  # identical bytes (same sha256)
    fields: list[FieldChange]
    config: ConfigDiff
    ops: OpsDiff
    size_a: int  # bytes
    size_b: int

    @property
    def size_abs(self) -> int:
        """B's size minus A's, in bytes."""
        return self.size_b - self.size_a

    @property
    def size_rel(self) -> float | None:
        """Relative size change (0.1 = 10% larger); None when A is empty."""
        return self.size_abs / self.size_a if self.size_a else None

    @property
    def changed_fields(self) -> list[FieldChange]:
        return [f for f in self.fields if f.changed]

    def get(self, name: str) -> FieldChange:
        """The field called ``name``, e.g. ``diff.get("code commit")``."""
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def unchanged(self) -> bool:
        """Nothing at all differs that devtrack records, bytes included."""
        return (self.same_artifact and not self.changed_fields and self.config.empty
                and self.ops.empty)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "same_artifact": self.same_artifact,
            "fields": [f.to_dict() for f in self.fields],
            "config": self.config.to_dict(), "ops": self.ops.to_dict(),
            "size": {"a_bytes": self.size_a, "b_bytes": self.size_b,
                     "abs_bytes": self.size_abs, "rel": self.size_rel},
        }


def flatten_config(config: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: ``{"opt": {"lr": 0.1}}`` → ``{"opt.lr": 0.1}``.

    Lists and scalars are leaf values; an empty table is a leaf ``{}`` so that adding one
    still shows up as a change.
    """
    flat: dict[str, Any] = {}
    for key, value in (config or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, path + "."))
        else:
            flat[path] = value
    return flat


def diff_config(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> ConfigDiff:
    flat_a, flat_b = flatten_config(a), flatten_config(b)
    return ConfigDiff(
        added={k: flat_b[k] for k in sorted(flat_b.keys() - flat_a.keys())},
        removed={k: flat_a[k] for k in sorted(flat_a.keys() - flat_b.keys())},
        changed={k: (flat_a[k], flat_b[k]) for k in sorted(flat_a.keys() & flat_b.keys())
                 if flat_a[k] != flat_b[k]},
    )


def diff_ops(a: Mapping[str, int], b: Mapping[str, int]) -> OpsDiff:
    return OpsDiff(
        added={k: b[k] for k in sorted(b.keys() - a.keys())},
        removed={k: a[k] for k in sorted(a.keys() - b.keys())},
        changed={k: (a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
        nodes_a=sum(a.values()), nodes_b=sum(b.values()),
    )


def _signature(tensors: list[Any]) -> list[str]:
    return [f"{t.name}:{t.dtype}{list(t.shape) if t.shape is not None else '?'}"
            for t in tensors]


def diff_releases(a: Release, b: Release) -> ReleaseDiff:
    """What changed from ``a`` (the baseline) to ``b``."""
    sa, sb = a.summary, b.summary
    fields = [
        FieldChange("code commit", a.git_commit, b.git_commit),
        FieldChange("dirty tree", a.git_dirty, b.git_dirty),
        FieldChange("data version", a.data_version, b.data_version),
        FieldChange("data sha256", a.data_sha256, b.data_sha256),
        FieldChange("training run", a.run_id, b.run_id),
        FieldChange("parent", a.parent, b.parent),
        FieldChange("format", a.format, b.format),
        FieldChange("quantization", sa.quantization, sb.quantization),
        FieldChange("params", sa.params, sb.params),
        FieldChange("weight dtypes", dict(sa.weight_dtypes), dict(sb.weight_dtypes)),
        FieldChange("opset", sa.opset, sb.opset),
        FieldChange("inputs", _signature(sa.inputs), _signature(sb.inputs)),
        FieldChange("outputs", _signature(sa.outputs), _signature(sb.outputs)),
    ]
    return ReleaseDiff(
        a=a.ref, b=b.ref, same_artifact=a.sha256 == b.sha256, fields=fields,
        config=diff_config(a.config, b.config), ops=diff_ops(sa.ops, sb.ops),
        size_a=a.size_bytes, size_b=b.size_bytes,
    )


def show_value(value: Any) -> str:
    """A diffed field or config value on one line: lists and tables joined, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
