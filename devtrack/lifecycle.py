"""Release lifecycle: status changes, deployments, their history, rollback and the audit check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtrack import queries_lifecycle
from devtrack.core.aggregate_runs import budget_latency_ms
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
from devtrack.errors import CheckFailed, DevtrackError, NotFoundError, UsageError
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


class NothingDeployed(CheckFailed):
    """A rollback asked for where nothing is deployed: no rollback candidate, exit 1."""


class ArtifactNotIntact(DevtrackError):
    """A release whose stored artifact is missing or modified cannot be approved, deployed
    or rolled back to, with or without --force: exit 2."""


def require_intact_artifact(ws: Workspace, rel: Release, action: str) -> None:
    """Rehash ``rel``'s stored artifact; ArtifactNotIntact naming the file when it is missing
    or its bytes changed. --force overrides a failed check, never this."""
    from devtrack.artifacts import ObjectChangedError

    try:  # from object storage, when the workspace keeps its files there
        ws.artifacts.materialize(rel.sha256, f"release {rel.ref}")
    except ObjectChangedError as exc:
        raise ArtifactNotIntact(f"cannot {action} {rel.ref}: {exc}") from None
    path = ws.artifacts.path_for(rel.sha256)
    where = path.relative_to(ws.root) if path.is_relative_to(ws.root) else path
    if not path.is_file():
        state = "is missing"
    else:
        from devtrack.artifacts import sha256_file

        actual = sha256_file(path)
        if actual == rel.sha256:
            return
        state = f"was modified (it hashes to {actual[:12]}, not {rel.sha256[:12]})"
    raise ArtifactNotIntact(
        f"cannot {action} {rel.ref}: its artifact {where} {state}; --force never overrides "
        f"this: copy the original file ({rel.source_name or 'the registered build'}) back "
        "there, or register a good build under a new version")


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
    and checks store (without flags, bench runs a profile as its file says)."""
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
    if to == "approved":  # rejecting or yanking a damaged release stays possible
        require_intact_artifact(ws, rel, "approve")
    store = ws.store
    with store.transaction():
        stored = queries_lifecycle.release_status_and_notes(store, rel.id)
        previous = stored[0] if stored else rel.status
        if previous == to:
            raise UsageError(f"{rel.ref} is already {to}; nothing to change")
        if to not in TRANSITIONS.get(previous, ()):
            hint = ("a yanked release stays yanked; register the same file under a new "
                    "version to ship it again" if previous == "yanked"
                    else f"from {previous} it can become: {', '.join(TRANSITIONS[previous])}")
            raise UsageError(f"{rel.ref} is {previous} and cannot become {to}; {hint}")
        queries_lifecycle.set_release_status(store, rel.id, to)
        live = queries_lifecycle.profiles_running(store, rel.id)
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
        stored = queries_lifecycle.release_status_and_notes(ws.store, rel.id)
        old = stored[1] if stored else rel.notes
        if text == old.strip():
            raise UsageError(f"{rel.ref} already has exactly these notes; nothing to change")
        queries_lifecycle.set_release_notes(ws.store, rel.id, text)
        ws.store.append_event(actor=current_user(), kind="notes", model=rel.model,
                              version=rel.version, reason=(reason or "").strip() or None,
                              payload={"old": old, "new": text})
    return get_release(ws, ReleaseRef(rel.model, rel.version))


# -- deployments ----------------------------------------------------------------------------

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
    return [_to_deployment(r)
            for r in queries_lifecycle.deployment_history(ws.store, model_id, profile)]


def current_deployment(ws: Workspace, model: str, profile: str) -> Deployment | None:
    """The deployment live on ``profile`` now, or None when nothing is deployed there."""
    model_id = require_model(ws, model)
    row = queries_lifecycle.live_deployment(ws.store, model_id, profile)
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
    else None and why not. A check is a verdict of the whole profile — its conditions and
    its policy (budgets, limits) — so a check made before either changed does not count;
    it is keyed on the hash ``check`` stores (the profile as ``bench`` runs it)."""
    from devtrack.pairing import measured_profile

    check = queries_lifecycle.latest_check(ws.store, rel.id, profile.name,
                                           measured_profile(profile).hash)
    if check is not None and check.passed:
        return int(check.id), ""
    if check is not None:
        return None, f"its latest check on {profile.name} (#{check.id}) failed"
    if queries_lifecycle.check_count(ws.store, rel.id, profile.name):
        return None, (f"its checks on {profile.name} were made under an older version of the "
                      "profile")
    return None, f"it has no check on {profile.name}"


def _insert_deployment(ws: Workspace, rel: Release, model_id: int, profile: str, kind: str,
                       reason: str, forced: bool, check_id: int | None,
                       now: str) -> tuple[int, int | None]:
    """End what is live on the profile and record the new deployment (inside a transaction)."""
    store = ws.store
    live = queries_lifecycle.live_release_on(store, model_id, profile)
    if live is not None:
        queries_lifecycle.end_deployments(store, model_id, profile, now)
    deployment_id = store.insert("deployments", {
        "model_id": model_id, "release_id": rel.id, "profile": profile, "kind": kind,
        "deployed_at": now, "deployed_by": current_user(), "reason": reason,
        "replaced_release_id": live,
        "forced": int(forced), "check_id": check_id, "ended_at": None,
    })
    return deployment_id, live


def _get_deployment(ws: Workspace, deployment_id: int) -> Deployment:
    row = queries_lifecycle.deployment(ws.store, deployment_id)
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
    require_intact_artifact(ws, rel, "deploy")
    store = ws.store
    model_id = require_model(ws, rel.model)
    with store.transaction():
        status, notes = (queries_lifecycle.release_status_and_notes(store, rel.id)
                         or (rel.status, rel.notes))
        if status == "rejected":
            raise UsageError(f"{rel.ref} is rejected and cannot be deployed; approve it with "
                             f"'devtrack promote {rel.ref} --to approved' if that was a mistake")
        if status == "yanked":
            raise UsageError(f"{rel.ref} is yanked, which is final; to ship these bytes again, "
                             "register the file under a new version")
        if not notes.strip():
            raise UsageError(f"{rel.ref} has no release notes; add them first: devtrack notes "
                             f"{rel.ref} --set TEXT")
        if queries_lifecycle.live_release_on(store, model_id, prof.name) == rel.id:
            raise UsageError(f"{rel.ref} is already deployed on {prof.name}; nothing to change")
        check_id, missing = _passing_check(ws, rel, prof)
        if check_id is None and not force:
            raise UsageError(
                f"cannot deploy {rel.ref} on {prof.name}: {missing}; run 'devtrack check "
                f"{rel.ref} --profile {prof.name}' first, or add --force to deploy anyway "
                "(the override is recorded)")
        forced = check_id is None
        now = utc_now()
        deployment_id, replaced_id = _insert_deployment(
            ws, rel, model_id, prof.name, "deploy", why, forced, check_id, now)
        replaced = _version_of(ws, replaced_id)
        store.append_event(
            actor=current_user(), kind="deploy", model=rel.model, version=rel.version,
            reason=why, ts=now,
            payload={"profile": prof.name, "profile_hash": prof.short_hash,
                     "deployment": deployment_id, "deployed_at": now,
                     "replaced": replaced, "forced": forced,
                     "overridden": missing if forced else None, "check": check_id})
    return _get_deployment(ws, deployment_id)


def _version_of(ws: Workspace, release_id: int | None) -> str | None:
    if release_id is None:
        return None
    return queries_lifecycle.release_version(ws.store, release_id)


# -- rollback -------------------------------------------------------------------------------


def _release_facts(ws: Workspace, model: str, prof: Profile) -> list[ReleaseFacts]:
    """What the rollback policy knows of each release: the figures of its run that counts
    on the profile (``counted_runs``) with the accuracy under the same conditions, or why
    there is none; a newer failed run under those conditions disqualifies it — as
    `devtrack check` judges budgets."""
    from devtrack.counted_runs import counted_evaluations, counted_runs

    model_id = require_model(ws, model)
    choices = counted_runs(ws, model_id, prof.name, prof.conditions_hash)
    accuracy = counted_evaluations(ws, model_id, prof.name, choices)
    deployed = queries_lifecycle.ever_deployed(ws.store, model_id)
    facts = []
    for r in list_releases(ws, model):
        choice = choices.get(r.id)
        run = choice.run if choice is not None else None
        figures, error = None, None
        if choice is not None and choice.failed is not None:  # newer than the ok run, if any
            error = choice.failed["error"] or "no reason recorded"
        elif run is not None:
            evaluation = accuracy.get(r.id)
            figures = Figures(p90_ms=budget_latency_ms(run), peak_rss_mb=run["peak_rss_mb"],
                              size_mb=r.size_bytes / MIB,
                              accuracy=float(evaluation["accuracy"]) if evaluation else None)
        facts.append(ReleaseFacts(r.version, r.status, r.id in deployed, figures,
                                  choice.other if choice is not None and run is None else 0,
                                  error, choice.newer_other if choice is not None else 0))
    return facts


def rollback_plan(ws: Workspace, model: str, profile: Profile | str,
                  to: str | None = None) -> RollbackPlan:
    """The rollback proposal and the ranked list, without changing anything."""
    prof = _load_profile(ws, profile)
    if to is not None:
        to = get_release(ws, ReleaseRef(model, to)).version
    live = current_deployment(ws, model, prof.name)
    if live is None:
        raise NothingDeployed(f"nothing of {model} is deployed on {prof.name}, so there is no "
                              f"release to roll back to; deploy one with 'devtrack deploy "
                              f"{model}@VERSION --profile {prof.name}' ('devtrack history "
                              f"{model}' shows where it is live)")
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

    A dry run only reads. Raises NothingDeployed (exit 1) when nothing is live on the
    profile, NoRollbackTarget (exit 1) when nothing qualifies and RollbackRefused (exit 2)
    when ``to`` is yanked, rejected, never approved or not earlier.
    """
    prof = _load_profile(ws, profile)
    if dry_run:
        plan = rollback_plan(ws, model, prof, to)
        _raise_refusal(model, plan)
        assert plan.target is not None
        require_intact_artifact(ws, get_release(ws, ReleaseRef(model, plan.target)),
                                "roll back to")
        return RollbackResult(plan, None)
    why = _require_reason(reason, "a rollback")
    store = ws.store
    with store.transaction():  # the plan is made and acted on under one write lock
        plan = rollback_plan(ws, model, prof, to)
        _raise_refusal(model, plan)
        assert plan.target is not None
        rel = get_release(ws, ReleaseRef(model, plan.target))
        require_intact_artifact(ws, rel, "roll back to")
        check_id, _ = _passing_check(ws, rel, prof)
        now = utc_now()
        deployment_id, _ = _insert_deployment(
            ws, rel, require_model(ws, model), prof.name, "rollback", why, False, check_id,
            now)
        store.append_event(
            actor=current_user(), kind="rollback", model=model, version=plan.target,
            reason=why, ts=now,
            payload={"profile": prof.name, "profile_hash": prof.short_hash,
                     "deployment": deployment_id, "deployed_at": now,
                     "replaced": plan.current,
                     "requested": to, "forced": False, "check": check_id,
                     "passed_over": {a.version: "; ".join(a.reasons)
                                     for a in plan.ranked if not a.chosen}})
    return RollbackResult(plan, _get_deployment(ws, deployment_id))
