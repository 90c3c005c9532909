"""``devtrack audit verify``: the events' hash chain, then the tables against the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devtrack.core.audit import ChainProblem
from devtrack.core.audit_state import (
    RELEASE_SEALED_FIELDS,
    RUN_SEALED_FIELDS,
    StateProblem,
    cross_check,
    run_fields_digest,
    samples_digest,
)
from devtrack.workspace import Workspace

_RELEASE_COLUMNS = ", ".join(f"r.{f}" for f in RELEASE_SEALED_FIELDS if f != "parent")
_RUN_COLUMNS = ", ".join(f"u.{f}" for f in RUN_SEALED_FIELDS)
_RELEASES_SQL = f"""
    SELECT r.id, m.name AS model, r.version, r.artifact_sha256, r.status, r.notes,
           p.version AS parent, {_RELEASE_COLUMNS}
    FROM releases r JOIN models m ON m.id = r.model_id
    LEFT JOIN releases p ON p.id = r.parent_id"""
_RUNS_SQL = f"""
    SELECT u.id, m.name AS model, r.version, u.samples, {_RUN_COLUMNS}
    FROM runs u JOIN releases r ON r.id = u.release_id JOIN models m ON m.id = r.model_id"""
_EVALUATIONS_SQL = """
    SELECT e.id, e.run_id, d.name AS dataset, e.accuracy, e.nonfinite
    FROM evaluations e LEFT JOIN datasets d ON d.id = e.dataset_id"""
_CHECKS_SQL = """
    SELECT c.id, m.name AS model, r.version, c.profile, c.profile_hash, c.passed, c.report
    FROM checks c JOIN releases r ON r.id = c.release_id JOIN models m ON m.id = r.model_id"""
_COMPARISONS_SQL = """
    SELECT c.id, m.name AS model, r.version, c.profile, c.status, c.ratio, c.verdict
    FROM comparisons c JOIN releases r ON r.id = c.candidate_release_id
    JOIN models m ON m.id = r.model_id"""
_DEPLOYMENTS_SQL = """
    SELECT d.id, m.name AS model, r.version, d.profile, d.kind, d.reason, d.forced,
           d.check_id, p.version AS replaced, d.ended_at
    FROM deployments d JOIN releases r ON r.id = d.release_id JOIN models m ON m.id = d.model_id
    LEFT JOIN releases p ON p.id = d.replaced_release_id"""
_DATASETS_SQL = "SELECT id, name, sha256, task, samples, source_name FROM datasets"
# What a run row keeps once its digests are taken (check_runs compares these one by one).
_RUN_KEPT = ("id", "model", "version", "status", "profile", "p50_ms", "peak_rss_mb")


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
    """Runs with digests of their samples and sealed fields instead of them (one row's blob
    and texts in memory at a time: a big workspace holds gigabytes of them)."""
    cursor = ws.store.conn.execute(_RUNS_SQL)
    names = [d[0] for d in cursor.description]
    rows = []
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        kept = {key: row[key] for key in _RUN_KEPT}
        kept["samples_sha256"] = samples_digest(row["samples"])
        kept["fields_sha256"] = run_fields_digest(row)
        rows.append(kept)
    return rows


def verify_audit(ws: Workspace) -> AuditResult:
    """Recompute the event hash chain (the problem names the first altered or removed
    event); when it holds, check releases, runs, evaluations, checks, deployments and
    datasets against it."""
    store = ws.store
    count = store.one("SELECT COUNT(*) AS n FROM events")
    events = int(count["n"]) if count else 0
    chain = store.verify_events()
    if chain is not None:  # the events themselves cannot be trusted to judge the tables
        return AuditResult(events, chain)
    state = cross_check(
        store.events(), releases=store.query(_RELEASES_SQL), runs=_runs(ws),
        evaluations=store.query(_EVALUATIONS_SQL), checks=store.query(_CHECKS_SQL),
        deployments=store.query(_DEPLOYMENTS_SQL), datasets=store.query(_DATASETS_SQL),
        comparisons=store.query(_COMPARISONS_SQL))
    return AuditResult(events, None, state)
