"""The record explain and bisect leave: their side-by-side measurements, each sealed by an event.

A measurement either makes is a real run of both releases in one worker, so it is stored as
``check`` and ``compare --rerun`` store theirs: one ``comparisons`` row (baseline = the good or
A release, candidate = the measured one; block or repeat ratios as a ``<f4`` blob, everything
else in ``details``). No new table: the event carries the summary a reader wants (``devtrack
log``, ``history``), and seals each row by the digest ``audit verify``
recomputes (``core/audit_state.py``: an ``explain`` event as a ``compare`` one, a ``bisect``
event's steps each as the ``compare`` event it stands for). Rows and their event are written
in one transaction; a bisect stopped half-way writes nothing, as a cut-short check does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.provenance import current_user
from devtrack.store import utc_now
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    from devtrack.bisecting import BisectResult, BisectStep
    from devtrack.core.explanation import Explanation
    from devtrack.pairing import PairedResult

EXPLAIN_KIND, BISECT_KIND = "explain", "bisect"
HEADLINE_CHARS = 400  # an event carries the sentence, not the whole explanation
TOP_IN_EVENT = 3


def _sealed(ws: Workspace, comparison_id: int) -> dict[str, Any]:
    """What an event says of a row it seals: the fields verify names one by one, read back
    as stored (a NaN is NULL there), and the digest of the rest."""
    from devtrack.auditing import comparison_digest, comparison_rows

    row = comparison_rows(ws, comparison_id)[0]
    return {"comparison": comparison_id, "status": row["status"], "ratio": row["ratio"],
            "verdict": row["verdict"], "baseline": row["baseline"],
            "fields_sha256": comparison_digest(ws, comparison_id)}


def _op_pair_row(a: Release, b: Release, profile: Profile, raw: dict[str, Any],
                 explanation: Explanation | None) -> dict[str, Any]:
    from devtrack.bench.protocol import samples_to_blob

    ok = raw.get("status") == "ok" and explanation is not None
    ratios = [float(x) for x in raw.get("repeat_ratios") or []]
    details = {"kind": EXPLAIN_KIND, "source": explanation.source if explanation else None,
               "repeat_ratios": ratios, "repeats": raw.get("repeats"),
               "repeat_s": raw.get("repeat_s"), "block_size": raw.get("block_size"),
               "runtime": raw.get("runtime"), "runtime_version": raw.get("runtime_version"),
               "warnings": raw.get("warnings") or [],
               "wall_s": (raw.get("isolation") or {}).get("wall_s"),
               "a": raw.get("a"), "b": raw.get("b")}  # each side's per-node times
    return {"baseline_release_id": a.id, "candidate_release_id": b.id,
            "profile": profile.name, "profile_hash": profile.hash,
            "status": raw.get("status") or "failed", "error": raw.get("error"),
            "ratio": explanation.ratio if ok and explanation else None,
            "ci_low": explanation.ci_low if ok and explanation else None,
            "ci_high": explanation.ci_high if ok and explanation else None,
            "verdict": None,  # explain measures and attributes; it does not judge
            "ratios": samples_to_blob(ratios) if ratios else None,
            "details": json.dumps(details), "created_at": utc_now(),
            "actor": current_user()}


def record_explain(ws: Workspace, a: Release, b: Release, profile: Profile,
                   raw: dict[str, Any], explanation: Explanation | None) -> int:
    """Store explain's per-operator measurement of A and B (``raw``, the worker's result, ok
    or failed) with an ``explain`` event carrying its headline and top contributors, in one
    transaction. Returns the event's id."""
    from devtrack.explaining import contributor_lines

    with ws.store.transaction():
        row_id = ws.store.insert("comparisons", _op_pair_row(a, b, profile, raw, explanation))
        payload: dict[str, Any] = {
            **_sealed(ws, row_id), "baseline": a.version, "profile": profile.name,
            "profile_hash": profile.hash[:12], "error": raw.get("error")}
        if explanation is not None:
            payload.update(delta_ms=explanation.delta_ms,
                           headline=explanation.headline[:HEADLINE_CHARS],
                           top="; ".join(contributor_lines(explanation)[:TOP_IN_EVENT]))
        event = ws.store.append_event(actor=current_user(), kind=EXPLAIN_KIND, model=b.model,
                                      version=b.version, payload=payload)
    return int(event["id"])


@dataclass(frozen=True)
class MeasuredStep:
    """A bisect step and the side-by-side measurement behind it (None: nothing ran)."""

    step: BisectStep
    release: Release
    paired: PairedResult | None


def record_bisect(ws: Workspace, result: BisectResult, good: Release, profile: Profile,
                  measured: list[MeasuredStep]) -> int:
    """Store every side-by-side measurement a bisect made (against ``good``) and one
    ``bisect`` event with its answer and every step, each step sealing its row, in one
    transaction. Returns the event's id; sets each step's ``comparison_id``."""
    from devtrack.comparison import store_pair
    from devtrack.metric_changes import paired_latency

    steps: list[dict[str, Any]] = []
    with ws.store.transaction():
        for item in measured:
            entry: dict[str, Any] = {"version": item.release.version,
                                     "verdict": item.step.verdict}
            if item.paired is not None:
                latency = (paired_latency(item.paired, result.threshold_pct)
                           if item.paired.ok else None)
                row_id = store_pair(ws, good, item.release, profile, item.paired, latency)
                entry.update(_sealed(ws, row_id), ci_low=item.step.ci_low,
                             ci_high=item.step.ci_high)
                item.step.comparison_id = row_id
            if item.step.reason:
                entry["reason"] = item.step.reason
            steps.append(entry)
        answer = result.first_bad or result.bad
        payload = {
            "good": good.version, "bad": _version(result.bad),
            "first_bad": _version(result.first_bad), "last_good": _version(result.last_good),
            "maybe": [_version(ref) for ref in result.candidates],
            "profile": profile.name, "profile_hash": profile.hash[:12],
            "threshold_pct": result.threshold_pct, "path_kind": result.path_kind,
            "releases": len(result.path), "measurements": result.measurements,
            "note": result.note, "steps": steps}
        event = ws.store.append_event(actor=current_user(), kind=BISECT_KIND,
                                      model=good.model, version=_version(answer),
                                      payload=payload)
    return int(event["id"])


def _version(ref: str | None) -> str | None:
    return None if ref is None else ref.rpartition("@")[2]


@dataclass(frozen=True)
class Investigation:
    """One recorded explain or bisect of a model line, as history shows it."""

    event_id: int
    kind: str  # explain | bisect
    ts: str
    actor: str
    model: str
    version: str | None
    profile: str | None
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event_id, "kind": self.kind, "ts": self.ts,
                "actor": self.actor, "model": self.model, "version": self.version,
                "profile": self.profile, "summary": self.summary}


def investigation_summary(kind: str, model: str, version: str | None,
                          payload: dict[str, Any]) -> str:
    """One line: a bisect's answer or an explain's headline, with the profile."""
    profile = payload.get("profile", "?")
    if kind == BISECT_KIND:
        span = f"{payload.get('good')} … {payload.get('bad')} on {profile}"
        if payload.get("first_bad"):
            step: dict[str, Any] = next(
                (s for s in payload.get("steps") or [] if isinstance(s, dict)
                 and s.get("version") == payload["first_bad"]), {})
            ratio = (f" (×{step['ratio']:.3f})" if isinstance(step.get("ratio"), float)
                     else "")
            maybe = (f" (or skipped {', '.join(payload['maybe'])})" if payload.get("maybe")
                     else "")
            count = payload.get("measurements")
            return (f"bisect {span}: first bad {payload['first_bad']}{ratio}{maybe}, after "
                    f"{payload.get('last_good')}; {count} measurement"
                    f"{'' if count == 1 else 's'}")
        return f"bisect {span}: {payload.get('note') or 'no first bad release'}"
    what = f"explain {payload.get('baseline')} → {version} on {profile}"
    if payload.get("status") != "ok":
        return f"{what}: measurement failed: {payload.get('error')}"
    # the cause; what changed between the releases is in the event (and `devtrack compare`)
    cause = str(payload.get("headline") or "").split("; what changed: ", 1)[0]
    return f"{what}: {cause}"


def investigations(ws: Workspace, model: str) -> list[Investigation]:
    """The explains and bisects recorded for ``model``, oldest first."""
    found = []
    for kind in (EXPLAIN_KIND, BISECT_KIND):
        for event in ws.store.events(model=model, kind=kind):
            try:
                payload = json.loads(event["payload"])
            except ValueError:
                payload = {}
            payload = payload if isinstance(payload, dict) else {}
            profile = payload.get("profile")
            found.append(Investigation(
                int(event["id"]), kind, event["ts"], event["actor"], model, event["version"],
                profile if isinstance(profile, str) else None,
                investigation_summary(kind, model, event["version"], payload)))
    return sorted(found, key=lambda item: item.event_id)
