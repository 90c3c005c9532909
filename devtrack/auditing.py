"""``devtrack audit verify``: the events' hash chain, the tables against the events, and the
stored files against the tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtrack import queries_audit
from devtrack.core.audit import ChainProblem
from devtrack.core.audit_state import (
    StateProblem,
    comparison_fields_digest,
    cross_check,
    evaluation_fields_digest,
    run_fields_digest,
    samples_digest,
    snapshot_conditions_hash,
)
from devtrack.errors import DatabaseError
from devtrack.store_contract import StoreBackend
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    from devtrack.artifact_audit import Progress, StoreReport

# What a run row keeps once its digests are taken (check_runs compares these one by one).
_RUN_KEPT = ("id", "model", "version", "status", "profile", "p50_ms", "peak_rss_mb")


# Every table verify reads; one missing (dropped by hand) is a finding, not a crash.
AUDITED_TABLES = ("meta", "events", "models", "artifacts", "releases", "runs", "datasets",
                  "evaluations", "checks", "comparisons", "deployments")


@dataclass(frozen=True)
class AuditResult:
    events: int
    problem: ChainProblem | None  # the first break in the hash chain
    state: list[StateProblem] = field(default_factory=list)  # rows the events do not explain
    files: StoreReport | None = None  # the stored bytes (None: not looked at)

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.state and (self.files is None
                                                            or self.files.ok)

    def to_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {"event_id": self.problem.event_id, "message": self.problem.message}
        return {"ok": self.ok, "events": self.events, "problem": problem,
                "state_problems": [p.to_dict() for p in self.state],
                "files": self.files.to_dict() if self.files is not None else None}


def _runs(ws: Workspace) -> list[dict[str, Any]]:
    """Runs with digests of their samples and sealed fields instead of them (one row's blob
    and texts in memory at a time: a big workspace holds gigabytes of them)."""
    rows = []
    for row in queries_audit.audited_runs(ws.store):
        kept = {key: row[key] for key in _RUN_KEPT}
        kept["samples_sha256"] = samples_digest(row["samples"])
        kept["fields_sha256"] = run_fields_digest(row)
        kept["conditions_hash"] = row["conditions_hash"]
        kept["snapshot_conditions_hash"] = snapshot_conditions_hash(row["profile_snapshot"])
        rows.append(kept)
    return rows


def missing_tables(ws: Workspace) -> list[str]:
    """The AUDITED_TABLES the database no longer has."""
    present = ws.store.table_names()
    return [table for table in AUDITED_TABLES if table not in present]


def _missing(table: str) -> str:
    return (f"table {table} is missing from the database: it was dropped outside devtrack; "
            "restore the database from a backup")


def _rows(ws: Workspace, table: str, query: Callable[[StoreBackend], list[dict[str, Any]]],
          gone: list[str], problems: list[StateProblem]) -> list[dict[str, Any]]:
    """The query's rows, or none (and a problem naming the table) when it cannot be read."""
    return _read(ws, table, lambda opened: query(opened.store), gone, problems)


def comparison_rows(ws: Workspace, comparison_id: int | None = None) -> list[dict[str, Any]]:
    """Comparisons as verify reads them, their block ratios replaced by a digest (what
    COMPARISON_SEALED_FIELDS names); one of them when ``comparison_id`` is given."""
    rows = queries_audit.audited_comparisons(ws.store, comparison_id)
    for row in rows:
        row["ratios_sha256"] = samples_digest(row.pop("ratios"))
    return rows


def comparison_digest(ws: Workspace, comparison_id: int) -> str:
    """What a compare or check event seals of the comparison it stored (read back)."""
    return comparison_fields_digest(comparison_rows(ws, comparison_id)[0])


def evaluation_rows(ws: Workspace, evaluation_id: int | None = None) -> list[dict[str, Any]]:
    """Evaluations as verify reads them, their predictions replaced by a digest (what
    EVALUATION_SEALED_FIELDS names); one of them when ``evaluation_id`` is given."""
    rows = []
    for row in queries_audit.audited_evaluations(ws.store, evaluation_id):
        row["predictions_sha256"] = samples_digest(row.pop("predictions"))
        rows.append(row)
    return rows


def evaluation_digest(ws: Workspace, evaluation_id: int) -> str:
    """What a bench event seals of the evaluation it stored (read back, as verify reads it)."""
    return evaluation_fields_digest(evaluation_rows(ws, evaluation_id)[0])


def _read(ws: Workspace, table: str, reader: Callable[[Workspace], list[dict[str, Any]]],
          gone: list[str], problems: list[StateProblem]) -> list[dict[str, Any]]:
    if table in gone:
        return []
    try:
        return reader(ws)
    except DatabaseError as exc:  # a column dropped or renamed by hand
        cause = exc.__cause__ or exc
        problems.append(StateProblem(table, None, f"table {table} cannot be read as devtrack "
                                     f"wrote it ({cause}); restore the database from a backup"))
        return []


def verify_audit(ws: Workspace, files: bool = True, quick: bool = False,
                 progress: Progress | None = None, deep: bool = False) -> AuditResult:
    """Recompute the event hash chain (the problem names the first altered or removed
    event); when it holds, check releases, runs, evaluations, checks, deployments and
    datasets against it. With ``files``, rehash every stored file a row references
    (``quick``: only check each is there with its registered size) and list the store's
    other files."""
    report = None
    if files:
        from devtrack.artifact_audit import audit_store

        report = audit_store(ws, quick=quick, progress=progress, deep=deep)
    gone = missing_tables(ws)
    if "events" in gone or "meta" in gone:
        table = "events" if "events" in gone else "meta"
        return AuditResult(0, ChainProblem(None, _missing(table)), files=report)
    store = ws.store
    events = queries_audit.event_count(store)
    chain = store.verify_events()
    if chain is not None:  # the events themselves cannot be trusted to judge the tables
        return AuditResult(events, chain, files=report)
    problems = [StateProblem(table, None, _missing(table)) for table in gone]
    runs = [] if {"runs", "releases", "models"} & set(gone) else _runs(ws)
    state = cross_check(
        store.events(),
        releases=_rows(ws, "releases", queries_audit.audited_releases, gone, problems),
        runs=runs, evaluations=_read(ws, "evaluations", evaluation_rows, gone, problems),
        checks=_rows(ws, "checks", queries_audit.audited_checks, gone, problems),
        deployments=_rows(ws, "deployments", queries_audit.audited_deployments, gone, problems),
        datasets=_rows(ws, "datasets", queries_audit.audited_datasets, gone, problems),
        comparisons=_read(ws, "comparisons", comparison_rows, gone, problems),
        models=_rows(ws, "models", queries_audit.audited_models, gone, problems))
    return AuditResult(events, None, problems + state, files=report)
