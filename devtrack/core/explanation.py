"""Why B is slower than A: align two graphs' operators, rank their shares of the change.

Pure: the per-node times come from a side-by-side profiled measurement (``explaining.py``),
the release diff from ``core/diff.py``. Nodes are matched by name first, then by an indexed
name token both keep (``fc1`` of ``fc1_mm_quant`` and ``fused fc1_mm/MatMulAddFusion``),
then, among the rest, by op type and position (the longest common op-type subsequence), so
a renamed, fused or quantized node still lines up; what is left is added (only in B) or
removed (only in A).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from devtrack.core.diff import ReleaseDiff, show_value
from devtrack.core.units import format_size

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"
HEADLINE_SHARE = 0.8  # the sentence names groups until they cover this much of the change
HEADLINE_GROUPS = 3
NAMES_SHOWN = 3
_QUANT_MARKERS = ("QLinear", "Integer", "QuantizeLinear", "DequantizeLinear", "DynamicQuantize")
_INT_DTYPES = ("int8", "uint8", "int4", "uint4")


@dataclass(frozen=True)
class NodeTime:
    """One executed node: its name, op type, input signatures and time per inference."""

    name: str
    op: str
    ms: float
    inputs: tuple[str, ...] = ()  # e.g. "float[1,64]", in input order

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeTime:
        return cls(str(data["name"]), str(data["op"]), float(data["ms"]),
                   tuple(str(x) for x in data.get("inputs", ())))


@dataclass(frozen=True)
class Contribution:
    """One aligned node's part in the change (B's name; A's for a removed node)."""

    name: str
    op: str
    status: str  # added | removed | changed | same
    a_ms: float | None
    b_ms: float | None
    delta_ms: float
    share: float | None  # of the measured total change; None when that is ~0
    a_name: str | None = None  # A's name when it differs (renamed, or matched by position)
    a_op: str | None = None
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "status": self.status,
                "a_ms": _r(self.a_ms), "b_ms": _r(self.b_ms), "delta_ms": _r(self.delta_ms),
                "share": _r(self.share), "a_name": self.a_name, "a_op": self.a_op,
                "details": list(self.details)}


@dataclass(frozen=True)
class OpTypeContribution:
    """One op type's part in the change, over all its nodes."""

    op: str
    nodes_a: int
    nodes_b: int
    a_ms: float | None  # None: not measured (structure alone)
    b_ms: float | None
    share: float | None

    @property
    def delta_ms(self) -> float | None:
        return None if self.a_ms is None or self.b_ms is None else self.b_ms - self.a_ms

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "nodes_a": self.nodes_a, "nodes_b": self.nodes_b,
                "a_ms": _r(self.a_ms), "b_ms": _r(self.b_ms), "delta_ms": _r(self.delta_ms),
                "share": _r(self.share)}


@dataclass
class Explanation:
    """The answer to "why is B slower (or faster) than A" on one profile."""

    a: str  # MODEL@VERSION
    b: str
    profile: str
    source: str | None  # where per-op times came from; None: from the structure alone
    a_ms: float | None = None  # per inference, measured side by side
    b_ms: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    nodes: list[Contribution] = field(default_factory=list)
    ops: list[OpTypeContribution] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what the release diff says changed
    note: str | None = None
    headline: str = ""

    @property
    def delta_ms(self) -> float | None:
        return None if self.a_ms is None or self.b_ms is None else self.b_ms - self.a_ms

    @property
    def attributed_share(self) -> float | None:
        """The nodes' deltas summed, as a share of the measured total change."""
        shares = [c.share for c in self.nodes if c.share is not None]
        return sum(shares) if shares else None

    def top(self, n: int = 3) -> list[Contribution]:
        """The ``n`` nodes that moved most in the direction of the total change."""
        return self.nodes[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "profile": self.profile, "source": self.source,
                "a_ms": _r(self.a_ms), "b_ms": _r(self.b_ms), "delta_ms": _r(self.delta_ms),
                "ratio": _r(self.ratio), "ci_low": _r(self.ci_low), "ci_high": _r(self.ci_high),
                "attributed_share": _r(self.attributed_share), "headline": self.headline,
                "changes": self.changes, "note": self.note,
                "nodes": [c.to_dict() for c in self.nodes],
                "op_types": [o.to_dict() for o in self.ops]}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# --- alignment ----------------------------------------------------------------------------

Pair = tuple[NodeTime | None, NodeTime | None]


def _tokens(name: str) -> set[str]:
    return {t.lower() for t in re.split(r"[^A-Za-z0-9]+|_", name) if t}


def _by_tokens(rest_a: Sequence[NodeTime], rest_b: Sequence[NodeTime]) -> dict[str, NodeTime]:
    """B's name → A's node, for nodes whose names share a token with a digit (``fc1`` in
    ``fc1_mm_quant`` and ``fused fc1_mm/MatMulAddFusion``) that no other leftover has: a
    node quantized, fused or renamed by an optimiser keeps its index."""
    def unique_keys(nodes: Sequence[NodeTime]) -> dict[str, NodeTime]:
        seen: dict[str, list[NodeTime]] = {}
        for node in nodes:
            for token in _tokens(node.name):
                if any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token):
                    seen.setdefault(token, []).append(node)
        return {t: ns[0] for t, ns in seen.items() if len(ns) == 1}

    keys_a, keys_b = unique_keys(rest_a), unique_keys(rest_b)
    found: dict[str, NodeTime] = {}
    used_a: set[str] = set()
    for token in sorted(keys_a.keys() & keys_b.keys()):
        node_a, node_b = keys_a[token], keys_b[token]
        if node_b.name not in found and node_a.name not in used_a:
            found[node_b.name] = node_a
            used_a.add(node_a.name)
    return found


def align_nodes(a: Sequence[NodeTime], b: Sequence[NodeTime]) -> list[Pair]:
    """Pairs (A's node, B's node) in B's order: by name; then by a shared indexed name token
    (``fc1``); then by op type and position among the nodes left (the longest common op-type
    subsequence); a node of one side only is paired with None."""
    names_a = {n.name: n for n in a}
    matched: dict[str, NodeTime] = {n.name: names_a[n.name] for n in b if n.name in names_a}
    rest_a = [n for n in a if n.name not in matched]
    rest_b = [n for n in b if n.name not in matched]
    matched.update(_by_tokens(rest_a, rest_b))
    taken = {n.name for n in matched.values()}
    rest_a = [n for n in a if n.name not in taken]
    rest_b = [n for n in b if n.name not in matched]
    matcher = difflib.SequenceMatcher(None, [n.op for n in rest_a], [n.op for n in rest_b],
                                      autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            matched[rest_b[block.b + k].name] = rest_a[block.a + k]
    taken = {n.name for n in matched.values()}
    pairs: list[Pair] = [(matched.get(node.name), node) for node in b]
    pairs += [(node, None) for node in a if node.name not in taken]
    return pairs


def _is_quantized(op: str, inputs: Sequence[str]) -> bool:
    return (any(m in op for m in _QUANT_MARKERS)
            or any(sig.startswith(_INT_DTYPES) for sig in inputs))


def _details(a: NodeTime, b: NodeTime) -> tuple[str, ...]:
    found: list[str] = []
    if a.name != b.name:
        found.append(f"was {a.name}")
    if a.op != b.op:
        found.append(f"op {a.op} → {b.op}")
    qa, qb = _is_quantized(a.op, a.inputs), _is_quantized(b.op, b.inputs)
    if qa != qb:
        found.append("quantized" if qb else "no longer quantized")
    if a.inputs != b.inputs and a.inputs and b.inputs:
        dtypes = ([s.split("[")[0] for s in a.inputs], [s.split("[")[0] for s in b.inputs])
        shapes = ([s.partition("[")[2] for s in a.inputs], [s.partition("[")[2] for s in b.inputs])
        if shapes[0] != shapes[1]:
            found.append(f"inputs {' '.join(a.inputs)} → {' '.join(b.inputs)}")
        elif dtypes[0] != dtypes[1]:
            found.append(f"dtype {','.join(dtypes[0])} → {','.join(dtypes[1])}")
    return tuple(found)


def _share(delta: float, total: float | None) -> float | None:
    return delta / total if total and abs(total) > 1e-9 else None


def contributions(pairs: Sequence[Pair], total_ms: float | None) -> list[Contribution]:
    """Each aligned pair's delta and share of ``total_ms`` (B - A per inference), ranked:
    most in the direction of the total change first."""
    result: list[Contribution] = []
    for node_a, node_b in pairs:
        if node_b is None and node_a is not None:
            result.append(Contribution(node_a.name, node_a.op, REMOVED, node_a.ms, None,
                                       -node_a.ms, _share(-node_a.ms, total_ms)))
        elif node_a is None and node_b is not None:
            result.append(Contribution(node_b.name, node_b.op, ADDED, None, node_b.ms,
                                       node_b.ms, _share(node_b.ms, total_ms)))
        elif node_a is not None and node_b is not None:
            details = _details(node_a, node_b)
            structural = [d for d in details if not d.startswith("was ")]
            delta = node_b.ms - node_a.ms
            result.append(Contribution(
                node_b.name, node_b.op, CHANGED if structural else SAME, node_a.ms, node_b.ms,
                delta, _share(delta, total_ms),
                a_name=node_a.name if node_a.name != node_b.name else None,
                a_op=node_a.op if node_a.op != node_b.op else None, details=details))
    sign = -1.0 if total_ms is not None and total_ms < 0 else 1.0
    result.sort(key=lambda c: (-sign * c.delta_ms, c.name))
    return result


def by_op_type(pairs: Sequence[Pair], total_ms: float | None) -> list[OpTypeContribution]:
    """Per op type: node counts and summed times of each side, ranked like nodes."""
    table: dict[str, list[float]] = {}
    for node_a, node_b in pairs:
        for k, node in ((0, node_a), (1, node_b)):
            if node is not None:
                row = table.setdefault(node.op, [0, 0, 0.0, 0.0])
                row[k] += 1
                row[2 + k] += node.ms
    rows = [OpTypeContribution(op, int(v[0]), int(v[1]), v[2], v[3],
                               _share(v[3] - v[2], total_ms)) for op, v in table.items()]
    sign = -1.0 if total_ms is not None and total_ms < 0 else 1.0
    rows.sort(key=lambda o: (-sign * (o.delta_ms or 0.0), o.op))
    return rows


# --- what changed, in words ---------------------------------------------------------------

def diff_phrases(diff: ReleaseDiff) -> list[str]:
    """The release diff as short phrases: ops, quantization, size, config, data, parent."""
    phrases: list[str] = []
    if diff.same_artifact:
        phrases.append("identical bytes")
    ops = diff.ops
    counts = [f"+{n} {op}" for op, n in ops.added.items()]
    counts += [f"-{n} {op}" for op, n in ops.removed.items()]
    counts += [f"{op} {x}→{y}" for op, (x, y) in ops.changed.items()]
    if counts:
        phrases.append("ops " + ", ".join(counts))
    for name in ("quantization", "format", "opset", "inputs", "outputs", "data version",
                 "code commit"):
        change = diff.get(name)
        if change.changed:
            phrases.append(f"{name} {show_value(change.a)} → {show_value(change.b)}")
    if diff.size_abs:
        sign = "+" if diff.size_abs > 0 else "-"
        phrases.append(f"size {sign}{format_size(abs(diff.size_abs))}")
    cfg = diff.config
    keys = [f"{k} {show_value(a)}→{show_value(b)}" for k, (a, b) in cfg.changed.items()]
    keys += [f"+{k}" for k in cfg.added] + [f"-{k}" for k in cfg.removed]
    if keys:
        shown = keys[:4] + ([f"{len(keys) - 4} more"] if len(keys) > 4 else [])
        phrases.append("config " + ", ".join(shown))
    parent = diff.get("parent")
    if parent.b is not None:
        phrases.append(f"parent {parent.b}")
    return phrases


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _group_label(status: str, op: str, items: list[Contribution]) -> str:
    names = sorted((c.name for c in items), key=_natural)[:NAMES_SHOWN]
    names += ["…"] if len(items) > NAMES_SHOWN else []
    kind = f"{status} " if status != SAME else ""
    plural = "s" if len(items) > 1 else ""
    count = f"{len(items)} " if len(items) > 1 else ""
    shared = [d for d in items[0].details if not d.startswith(("was ", "inputs "))
              and all(d in c.details for c in items[1:])]
    why = f" ({', '.join(shared)})" if status == CHANGED and shared else ""
    return f"{count}{kind}{op} node{plural} {', '.join(names)}{why}"


def contribution_groups(explanation: Explanation) -> list[tuple[float, float, str]]:
    """The nodes that moved in the direction of the change, grouped by (status, op type),
    largest share first, until they cover ``HEADLINE_SHARE`` (at most ``HEADLINE_GROUPS``):
    (share, delta ms, label) each, e.g. (0.86, 1.03, "2 added MatMul nodes up_proj, …")."""
    groups: dict[tuple[str, str], list[Contribution]] = {}
    for c in explanation.nodes:
        if c.share is not None and c.share > 0:
            groups.setdefault((c.status, c.op), []).append(c)
    ranked = sorted(groups.items(), key=lambda kv: -sum(c.share or 0.0 for c in kv[1]))
    chosen: list[tuple[float, float, str]] = []
    covered = 0.0
    for (status, op), items in ranked[:HEADLINE_GROUPS]:
        share = sum(c.share or 0.0 for c in items)
        chosen.append((share, sum(c.delta_ms for c in items), _group_label(status, op, items)))
        covered += share
        if covered >= HEADLINE_SHARE:
            break
    return chosen


def headline(explanation: Explanation) -> str:
    """The one sentence a reviewer reads, e.g. "+1.2 ms (+37%): 86% in 2 added MatMul nodes
    up_proj, down_proj; …; what changed: ops +2 MatMul, size +512 KB"."""
    changed = "; what changed: " + ", ".join(explanation.changes) if explanation.changes else ""
    delta = explanation.delta_ms
    if delta is None or explanation.a_ms is None:
        return (explanation.note or "no per-operator times") + changed
    if explanation.ratio is not None:
        pct = f"{(explanation.ratio - 1.0) * 100:+.0f}%"
    else:
        pct = f"{delta / explanation.a_ms * 100:+.0f}%" if explanation.a_ms else "n/a"
    head = f"{delta:+.3g} ms ({pct})"
    low, high = explanation.ci_low, explanation.ci_high
    if low is not None and high is not None and low <= 1.0 <= high:
        head += " (within noise: the CI of the ratio includes 1)"
    parts = [f"{share * 100:.0f}% in {label}" for share, _, label in contribution_groups(
        explanation)]
    return head + (": " + "; ".join(parts) if parts else "") + changed


def explain_measured(a: str, b: str, profile: str, source: str, a_nodes: Sequence[NodeTime],
                     b_nodes: Sequence[NodeTime], a_ms: float, b_ms: float,
                     ratio: float | None, ci: tuple[float, float] | None,
                     diff: ReleaseDiff) -> Explanation:
    """The explanation from per-node times measured side by side and the release diff."""
    total = b_ms - a_ms
    pairs = align_nodes(a_nodes, b_nodes)
    result = Explanation(a, b, profile, source, a_ms, b_ms, ratio,
                         ci[0] if ci else None, ci[1] if ci else None,
                         contributions(pairs, total), by_op_type(pairs, total),
                         diff_phrases(diff))
    result.headline = headline(result)
    return result


def explain_structure(a: str, b: str, profile: str, reason: str,
                      diff: ReleaseDiff) -> Explanation:
    """No per-op source: say why, and explain from the structure (the release diff) alone."""
    result = Explanation(a, b, profile, None, changes=diff_phrases(diff),
                         note=f"no per-operator times: {reason}; from the structure alone")
    ops = diff.ops
    counts = {op: (0, n) for op, n in ops.added.items()}
    counts.update({op: (n, 0) for op, n in ops.removed.items()})
    counts.update(ops.changed)
    result.ops = [OpTypeContribution(op, x, y, None, None, None)
                  for op, (x, y) in sorted(counts.items(), key=lambda kv: kv[1][0] - kv[1][1])]
    result.headline = headline(result)
    return result
