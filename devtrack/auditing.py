"""``devtrack audit verify``: the events' hash chain, then the tables against the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devtrack.core.audit import ChainProblem
from devtrack.core.audit_state import StateProblem, cross_check, samples_digest
from devtrack.workspace import Workspace

_RELEASES_SQL = """
    SELECT r.id, m.name AS model, r.version, r.artifact_sha256, r.status, r.notes
    FROM releases r JOIN models m ON m.id = r.model_id"""
_RUNS_SQL = """
    SELECT u.id, m.name AS model, r.version, u.status, u.profile, u.p50_ms, u.peak_rss_mb,
           u.samples
    FROM runs u JOIN releases r ON r.id = u.release_id JOIN models m ON m.id = r.model_id"""
_CHECKS_SQL = """
    SELECT c.id, m.name AS model, r.version, c.profile, c.passed
    FROM checks c JOIN releases r ON r.id = c.release_id JOIN models m ON m.id = r.model_id"""
_DEPLOYMENTS_SQL = """
    SELECT d.id, m.name AS model, r.version, d.profile, d.kind, d.ended_at
    FROM deployments d JOIN releases r ON r.id = d.release_id JOIN models m ON m.id = d.model_id"""


@dataclass(frozen=True)
class AuditResult:
    events: int
    problem: ChainProblem | None  # the first break in the hash chain
    state: list[StateProblem] = field(default_factory=list)  # rows the events do not explain

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.state

    def to_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {"event_id": self.problem.event_id, "message": self.problem.message}
        return {"ok": self.ok, "events": self.events, "problem": problem,
                "state_problems": [p.to_dict() for p in self.state]}


def _runs(ws: Workspace) -> list[dict[str, Any]]:
    """Runs with a digest of their samples instead of the samples (one blob in memory at a
    time: a big workspace holds gigabytes of them)."""
    cursor = ws.store.conn.execute(_RUNS_SQL)
    names = [d[0] for d in cursor.description]
    rows = []
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        row["samples_sha256"] = samples_digest(row.pop("samples"))
        rows.append(row)
    return rows


def verify_audit(ws: Workspace) -> AuditResult:
    """Recompute the event hash chain (the problem names the first altered or removed
    event); when it holds, check releases, runs, checks and deployments against it."""
    store = ws.store
    count = store.one("SELECT COUNT(*) AS n FROM events")
    events = int(count["n"]) if count else 0
    chain = store.verify_events()
    if chain is not None:  # the events themselves cannot be trusted to judge the tables
        return AuditResult(events, chain)
    state = cross_check(store.events(), store.query(_RELEASES_SQL), _runs(ws),
                        store.query(_CHECKS_SQL), store.query(_DEPLOYMENTS_SQL))
    return AuditResult(events, None, state)
