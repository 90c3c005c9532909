"""Release lifecycle: status changes, deployments, their history, rollback and the audit check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtrack.core.budgets import Figures
from devtrack.core.profile import Profile
from devtrack.core.refs import ReleaseRef, parse_ref
from devtrack.core.release import Release
from devtrack.core.rollback import (
    EVIDENCE,
    ReleaseFacts,
    RollbackPlan,
    propose_rollback,
    refusal_kind,
)
from devtrack.errors import CheckFailed, NotFoundError, UsageError
from devtrack.provenance import current_user
from devtrack.registry import get_release, list_releases, require_model
from devtrack.store import utc_now
from devtrack.workspace import Workspace

# Allowed status changes. A rejection can be reconsidered; a yank is final (re-register the
# same file under a new version to bring it back, so the yanked version's record stays true).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("approved", "rejected", "yanked"),
    "approved": ("rejected", "yanked"),
    "rejected": ("approved", "yanked"),
    "yanked": (),
}
PROMOTE_TARGETS = ("approved", "rejected", "yanked")
MIB = 1024 * 1024


class RollbackRefused(UsageError):
    """``--to`` named a release that is the wrong kind of target (yanked, newer, ...): exit 2."""

    def __init__(self, message: str, plan: RollbackPlan) -> None:
        super().__init__(message)
        self.plan = plan


class NoRollbackTarget(CheckFailed):
    """No release qualifies (or the one asked for fails on evidence): exit 1."""

    def __init__(self, message: str, plan: RollbackPlan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True)
class Deployment:
    """One row of the deployment history: a release live on a profile from ``deployed_at``."""

    id: int
    model: str
    version: str
    profile: str
    kind: str  # deploy | rollback
    deployed_at: str
    deployed_by: str
    reason: str
    replaced: str | None  # the version it replaced on that profile
    forced: bool
    check_id: int | None
    ended_at: str | None  # None while live

    @property
    def live(self) -> bool:
        return self.ended_at is None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "version": self.version,
                "profile": self.profile, "kind": self.kind, "deployed_at": self.deployed_at,
                "deployed_by": self.deployed_by, "reason": self.reason,
                "replaced": self.replaced, "forced": self.forced, "check_id": self.check_id,
                "ended_at": self.ended_at, "live": self.live}


@dataclass(frozen=True)
class PromoteResult:
    release: str
    previous: str
    status: str
    still_deployed_on: tuple[str, ...]  # profiles where a rejected/yanked release is live

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release, "previous": self.previous, "status": self.status,
                "still_deployed_on": list(self.still_deployed_on)}


@dataclass(frozen=True)
class RollbackResult:
    plan: RollbackPlan
    deployment: Deployment | None  # None on a dry run

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "dry_run": self.deployment is None,
                "deployment": self.deployment.to_dict() if self.deployment else None}


def _require_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise UsageError(f"{what} needs a reason: add --reason TEXT saying why")
    return text


def _release(ws: Workspace, release: Release | ReleaseRef | str) -> Release:
    return release if isinstance(release, Release) else get_release(ws, release)


def _load_profile(ws: Workspace, profile: Profile | str) -> Profile:
    """The profile as ``devtrack bench -p NAME`` runs it, so its hash is the one that runs
    and checks store (bench may raise the timeout, which changes the hash)."""
    from devtrack.benchmarking import BenchOverrides
    from devtrack.profiles import load_profile

    loaded = profile if isinstance(profile, Profile) else load_profile(profile, ws.root)
    return BenchOverrides().apply(loaded)


# -- status ---------------------------------------------------------------------------------


def promote(ws: Workspace, release: Release | ReleaseRef | str, to: str,
            reason: str) -> PromoteResult:
    """Change a release's status (see TRANSITIONS), with the reason recorded as an event."""
    if to not in PROMOTE_TARGETS:
        raise UsageError(f"cannot promote to {to!r}; choose one of {', '.join(PROMOTE_TARGETS)}")
    why = _require_reason(reason, "a status change")
    rel = _release(ws, release)
    store = ws.store
    with store.transaction():
        row = store.one("SELECT status FROM releases WHERE id = ?", (rel.id,))
        previous = row["status"] if row else rel.status
        if previous == to:
            raise UsageError(f"{rel.ref} is already {to}; nothing to change")
        if to not in TRANSITIONS.get(previous, ()):
            hint = ("a yanked release stays yanked; register the same file under a new "
                    "version to ship it again" if previous == "yanked"
                    else f"from {previous} it can become: {', '.join(TRANSITIONS[previous])}")
            raise UsageError(f"{rel.ref} is {previous} and cannot become {to}; {hint}")
        store.conn.execute("UPDATE releases SET status = ? WHERE id = ?", (to, rel.id))
        live = [d["profile"] for d in store.query(
            "SELECT profile FROM deployments WHERE release_id = ? AND ended_at IS NULL "
            "ORDER BY profile", (rel.id,))]
        store.append_event(actor=current_user(), kind="promote", model=rel.model,
                           version=rel.version, reason=why,
                           payload={"from": previous, "to": to, "deployed_on": live})
    bad = tuple(live) if to in ("rejected", "yanked") else ()
    return PromoteResult(rel.ref, previous, to, bad)


def set_notes(ws: Workspace, release: Release | ReleaseRef | str, notes: str,
              reason: str | None = None) -> Release:
    """Replace a release's notes (deploying needs them); the old text is kept in the event."""
    text = notes.strip()
    if not text:
        raise UsageError("release notes cannot be empty; say what changed and why")
    rel = _release(ws, release)
    with ws.store.transaction():  # the old text is read under the write lock: none is lost
        row = ws.store.one("SELECT notes FROM releases WHERE id = ?", (rel.id,))
        old = row["notes"] if row else rel.notes
        if text == old.strip():
            raise UsageError(f"{rel.ref} already has exactly these notes; nothing to change")
        ws.store.conn.execute("UPDATE releases SET notes = ? WHERE id = ?", (text, rel.id))
        ws.store.append_event(actor=current_user(), kind="notes", model=rel.model,
                              version=rel.version, reason=(reason or "").strip() or None,
                              payload={"old": old, "new": text})
    return get_release(ws, ReleaseRef(rel.model, rel.version))


# -- deployments ----------------------------------------------------------------------------

_DEPLOYMENT_SQL = """
SELECT d.*, m.name AS model, r.version AS version, p.version AS replaced_version
FROM deployments d
JOIN models m ON m.id = d.model_id
JOIN releases r ON r.id = d.release_id
LEFT JOIN releases p ON p.id = d.replaced_release_id
"""


def _to_deployment(row: dict[str, Any]) -> Deployment:
    return Deployment(
        id=row["id"], model=row["model"], version=row["version"], profile=row["profile"],
        kind=row["kind"], deployed_at=row["deployed_at"], deployed_by=row["deployed_by"],
        reason=row["reason"], replaced=row["replaced_version"], forced=bool(row["forced"]),
        check_id=row["check_id"], ended_at=row["ended_at"],
    )


def history(ws: Workspace, model: str, profile: str | None = None) -> list[Deployment]:
    """Every deployment and rollback of ``model`` (on ``profile``), oldest first."""
    model_id = require_model(ws, model)
    sql = _DEPLOYMENT_SQL + " WHERE d.model_id = ?"
    params: list[Any] = [model_id]
    if profile is not None:
        sql += " AND d.profile = ?"
        params.append(profile)
    return [_to_deployment(r) for r in ws.store.query(sql + " ORDER BY d.id", tuple(params))]


def current_deployment(ws: Workspace, model: str, profile: str) -> Deployment | None:
    """The deployment live on ``profile`` now, or None when nothing is deployed there."""
    model_id = require_model(ws, model)
    row = ws.store.one(_DEPLOYMENT_SQL + " WHERE d.model_id = ? AND d.profile = ? AND "
                       "d.ended_at IS NULL ORDER BY d.id DESC LIMIT 1", (model_id, profile))
    return _to_deployment(row) if row else None


def current_deployments(ws: Workspace, model: str) -> dict[str, Deployment]:
    """What is live on each profile, by profile name (for deployed-on badges)."""
    return {d.profile: d for d in history(ws, model) if d.live}


def deployed_release(ws: Workspace, model: str, profile: str) -> Release:
    """Resolve ``MODEL@deployed`` on ``profile``."""
    live = current_deployment(ws, model, profile)
    if live is None:
        raise NotFoundError(f"{model}@deployed: nothing of {model} is deployed on {profile} "
                            f"(see 'devtrack history {model}')")
    return get_release(ws, ReleaseRef(model, live.version))


def resolve_release(ws: Workspace, ref: ReleaseRef | str, profile: str | None = None) -> Release:
    """Like registry.get_release, but ``MODEL@deployed`` works when a profile is given."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if parsed.version == "deployed" and profile is not None:
        return deployed_release(ws, parsed.model, profile)
    return get_release(ws, parsed)


def _passing_check(ws: Workspace, rel: Release, profile: Profile) -> tuple[int | None, str]:
    """The id of the latest check of rel on profile under its current hash if it passed,
    else None and why not."""
    row = ws.store.one(
        "SELECT id, passed FROM checks WHERE release_id = ? AND profile = ? AND "
        "profile_hash = ? ORDER BY id DESC LIMIT 1", (rel.id, profile.name, profile.hash))
    if row is not None and row["passed"]:
        return int(row["id"]), ""
    if row is not None:
        return None, f"its latest check on {profile.name} (#{row['id']}) failed"
    older = ws.store.one("SELECT COUNT(*) AS n FROM checks WHERE release_id = ? AND profile = ?",
                         (rel.id, profile.name))
    if older and older["n"]:
        return None, (f"its checks on {profile.name} were made under an older version of the "
                      "profile")
    return None, f"it has no check on {profile.name}"


def _insert_deployment(ws: Workspace, rel: Release, model_id: int, profile: str, kind: str,
                       reason: str, forced: bool, check_id: int | None) -> tuple[int, int | None]:
    """End what is live on the profile and record the new deployment (inside a transaction)."""
    store = ws.store
    now = utc_now()
    live = store.one("SELECT id, release_id FROM deployments WHERE model_id = ? AND profile = ? "
                     "AND ended_at IS NULL", (model_id, profile))
    if live is not None:
        store.conn.execute("UPDATE deployments SET ended_at = ? WHERE model_id = ? AND "
                           "profile = ? AND ended_at IS NULL", (now, model_id, profile))
    deployment_id = store.insert("deployments", {
        "model_id": model_id, "release_id": rel.id, "profile": profile, "kind": kind,
        "deployed_at": now, "deployed_by": current_user(), "reason": reason,
        "replaced_release_id": live["release_id"] if live else None,
        "forced": int(forced), "check_id": check_id, "ended_at": None,
    })
    return deployment_id, (live["release_id"] if live else None)


def _get_deployment(ws: Workspace, deployment_id: int) -> Deployment:
    row = ws.store.one(_DEPLOYMENT_SQL + " WHERE d.id = ?", (deployment_id,))
    assert row is not None
    return _to_deployment(row)


def deploy(ws: Workspace, release: Release | ReleaseRef | str, profile: Profile | str,
           reason: str, force: bool = False) -> Deployment:
    """Make a release live on a profile: needs release notes and a passing check there.

    ``force`` overrides a missing or failed check (not missing notes, nor a rejected or
    yanked release); the override and what it overrode are recorded.
    """
    why = _require_reason(reason, "a deployment")
    prof = _load_profile(ws, profile)
    rel = _release(ws, release)
    if not prof.runs_format(rel.format):
        raise UsageError(f"profile {prof.name} does not run {rel.format} models; deploy "
                         f"{rel.ref} on a profile that lists {rel.format} in its formats")
    store = ws.store
    model_id = require_model(ws, rel.model)
    with store.transaction():
        row = store.one("SELECT status, notes FROM releases WHERE id = ?", (rel.id,))
        status, notes = (row["status"], row["notes"]) if row else (rel.status, rel.notes)
        if status == "rejected":
            raise UsageError(f"{rel.ref} is rejected and cannot be deployed; approve it with "
                             f"'devtrack promote {rel.ref} --to approved' if that was a mistake")
        if status == "yanked":
            raise UsageError(f"{rel.ref} is yanked, which is final; to ship these bytes again, "
                             "register the file under a new version")
        if not notes.strip():
            raise UsageError(f"{rel.ref} has no release notes; add them first: devtrack notes "
                             f"{rel.ref} --set TEXT")
        live = store.one("SELECT release_id FROM deployments WHERE model_id = ? AND profile = ? "
                         "AND ended_at IS NULL", (model_id, prof.name))
        if live is not None and live["release_id"] == rel.id:
            raise UsageError(f"{rel.ref} is already deployed on {prof.name}; nothing to change")
        check_id, missing = _passing_check(ws, rel, prof)
        if check_id is None and not force:
            raise UsageError(
                f"cannot deploy {rel.ref} on {prof.name}: {missing}; run 'devtrack check "
                f"{rel.ref} --profile {prof.name}' first, or add --force to deploy anyway "
                "(the override is recorded)")
        forced = check_id is None
        deployment_id, replaced_id = _insert_deployment(
            ws, rel, model_id, prof.name, "deploy", why, forced, check_id)
        replaced = _version_of(ws, replaced_id)
        store.append_event(
            actor=current_user(), kind="deploy", model=rel.model, version=rel.version,
            reason=why,
            payload={"profile": prof.name, "profile_hash": prof.short_hash,
                     "deployment": deployment_id, "replaced": replaced, "forced": forced,
                     "overridden": missing if forced else None, "check": check_id})
    return _get_deployment(ws, deployment_id)


def _version_of(ws: Workspace, release_id: int | None) -> str | None:
    if release_id is None:
        return None
    row = ws.store.one("SELECT version FROM releases WHERE id = ?", (release_id,))
    return row["version"] if row else None


# -- rollback -------------------------------------------------------------------------------


def _latest_figures(ws: Workspace, model_id: int,
                    prof: Profile) -> dict[int, tuple[Figures | None, str | None]]:
    """Per release id: figures of its latest finished run on the profile under the current
    hash with the newest accuracy under that hash, or the error if that run failed — as
    `devtrack check` judges budgets."""
    where = "r.model_id = ? AND runs.profile = ? AND runs.profile_hash = ?"
    params = (model_id, prof.name, prof.hash)
    accuracy = {row["release_id"]: float(row["accuracy"]) for row in ws.store.query(
        "SELECT runs.release_id, e.accuracy FROM evaluations e "
        "JOIN runs ON runs.id = e.run_id JOIN releases r ON r.id = runs.release_id "
        f"WHERE {where} AND e.accuracy IS NOT NULL ORDER BY e.id", params)}
    rows = ws.store.query(
        "SELECT runs.release_id, runs.status, runs.error, runs.p90_ms, runs.peak_rss_mb, "
        "a.size_bytes FROM runs JOIN releases r ON r.id = runs.release_id "
        "JOIN artifacts a ON a.sha256 = r.artifact_sha256 "
        f"WHERE {where} AND runs.status IN ('ok', 'failed') ORDER BY runs.id", params)
    latest: dict[int, tuple[Figures | None, str | None]] = {}
    for row in rows:  # later runs overwrite earlier ones
        if row["status"] != "ok":
            latest[row["release_id"]] = (None, row["error"] or "no reason recorded")
            continue
        latest[row["release_id"]] = (Figures(
            p90_ms=row["p90_ms"], peak_rss_mb=row["peak_rss_mb"],
            size_mb=row["size_bytes"] / MIB, accuracy=accuracy.get(row["release_id"])), None)
    return latest


def _release_facts(ws: Workspace, model: str, prof: Profile) -> list[ReleaseFacts]:
    model_id = require_model(ws, model)
    latest = _latest_figures(ws, model_id, prof)
    deployed = {r["release_id"] for r in ws.store.query(
        "SELECT DISTINCT release_id FROM deployments WHERE model_id = ?", (model_id,))}
    stale = {r["release_id"]: r["n"] for r in ws.store.query(
        "SELECT release_id, COUNT(*) AS n FROM runs WHERE profile = ? AND profile_hash != ? "
        "AND status = 'ok' GROUP BY release_id", (prof.name, prof.hash))}
    facts = []
    for r in list_releases(ws, model):
        figures, error = latest.get(r.id, (None, None))
        facts.append(ReleaseFacts(r.version, r.status, r.id in deployed, figures,
                                  stale.get(r.id, 0), error))
    return facts


def rollback_plan(ws: Workspace, model: str, profile: Profile | str,
                  to: str | None = None) -> RollbackPlan:
    """The rollback proposal and the ranked list, without changing anything."""
    prof = _load_profile(ws, profile)
    if to is not None:
        to = get_release(ws, ReleaseRef(model, to)).version
    live = current_deployment(ws, model, prof.name)
    if live is None:
        raise UsageError(f"nothing of {model} is deployed on {prof.name}, so there is nothing "
                         f"to roll back; deploy with 'devtrack deploy {model}@VERSION "
                         f"--profile {prof.name}'")
    facts = _release_facts(ws, model, prof)
    return propose_rollback(facts, live.version, prof.name, prof.budgets, to)


def _raise_refusal(model: str, plan: RollbackPlan) -> None:
    kind = refusal_kind(plan)
    if kind is None:
        return
    message = f"{model}: {plan.refusal}"
    if kind == EVIDENCE:
        raise NoRollbackTarget(message, plan)
    raise RollbackRefused(message, plan)


def rollback(ws: Workspace, model: str, profile: Profile | str, reason: str | None,
             to: str | None = None, dry_run: bool = False) -> RollbackResult:
    """Deploy the proposed earlier release (``to`` if given and it qualifies).

    A dry run only reads. Raises NoRollbackTarget (exit 1) when nothing qualifies and
    RollbackRefused (exit 2) when ``to`` is yanked, rejected, never approved or not earlier.
    """
    prof = _load_profile(ws, profile)
    if dry_run:
        plan = rollback_plan(ws, model, prof, to)
        _raise_refusal(model, plan)
        return RollbackResult(plan, None)
    why = _require_reason(reason, "a rollback")
    store = ws.store
    with store.transaction():  # the plan is made and acted on under one write lock
        plan = rollback_plan(ws, model, prof, to)
        _raise_refusal(model, plan)
        assert plan.target is not None
        rel = get_release(ws, ReleaseRef(model, plan.target))
        check_id, _ = _passing_check(ws, rel, prof)
        deployment_id, _ = _insert_deployment(
            ws, rel, require_model(ws, model), prof.name, "rollback", why, False, check_id)
        store.append_event(
            actor=current_user(), kind="rollback", model=model, version=plan.target,
            reason=why,
            payload={"profile": prof.name, "profile_hash": prof.short_hash,
                     "deployment": deployment_id, "replaced": plan.current,
                     "requested": to, "forced": False, "check": check_id,
                     "passed_over": {a.version: "; ".join(a.reasons)
                                     for a in plan.ranked if not a.chosen}})
    return RollbackResult(plan, _get_deployment(ws, deployment_id))
