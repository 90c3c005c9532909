"""Cross-checking the workspace's tables against its audit trail (pure functions).

The hash chain seals the events; the tables a user reads (release status, runs, checks,
deployments) are derived from the same changes. Every change writes its row and its event
in one transaction, so a row that disagrees with the sealed event of its change, or a row
no event accounts for, was edited or added by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
INITIAL_STATUS = "candidate"


@dataclass(frozen=True)
class StateProblem:
    """A table row that disagrees with the audit trail."""

    table: str
    row_id: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row_id": self.row_id, "message": self.message}


def samples_digest(samples: bytes | None) -> str | None:
    """What a bench event seals of a run's raw samples."""
    return hashlib.sha256(samples).hexdigest() if samples else None


def _payload(event: Row) -> dict[str, Any]:
    raw = event.get("payload")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _ref(row: Row) -> str:
    return f"{row['model']}@{row['version']}"


def _by_id(rows: Iterable[Row]) -> dict[int, Row]:
    return {int(row["id"]): row for row in rows}


class _Events:
    """The events of each kind with their payloads, in id order."""

    def __init__(self, events: Iterable[Row]) -> None:
        self.of_kind: dict[str, list[tuple[Row, dict[str, Any]]]] = {}
        for event in events:
            self.of_kind.setdefault(str(event["kind"]), []).append((event, _payload(event)))

    def __call__(self, *kinds: str) -> list[tuple[Row, dict[str, Any]]]:
        found = [pair for kind in kinds for pair in self.of_kind.get(kind, [])]
        return sorted(found, key=lambda pair: int(pair[0]["id"]))


def check_releases(events: _Events, releases: Iterable[Row]) -> list[StateProblem]:
    """Each release was registered (same bytes) and has the status its promotions left and
    the notes its last notes event set."""
    problems: list[StateProblem] = []
    registered = {(e["model"], e["version"]): (e, p) for e, p in events("register")}
    status: dict[tuple[str, str], tuple[str, int]] = {}
    for event, payload in events("promote"):
        if "to" in payload:
            status[(event["model"], event["version"])] = (payload["to"], int(event["id"]))
    notes = {(e["model"], e["version"]): (p["new"], int(e["id"])) for e, p in events("notes")
             if "new" in p}
    seen = set()
    for row in releases:
        key = (row["model"], row["version"])
        seen.add(key)
        reg = registered.get(key)
        if reg is None:
            problems.append(StateProblem("releases", row["id"], f"release {_ref(row)} has no "
                                         "register event: it was added outside devtrack"))
            continue
        event, payload = reg
        sha = payload.get("sha256")
        if sha is not None and sha != row["artifact_sha256"]:
            problems.append(StateProblem(
                "releases", row["id"], f"release {_ref(row)} points at artifact "
                f"{str(row['artifact_sha256'])[:12]}, but event {event['id']} registered "
                f"{str(sha)[:12]}"))
        expected, source = status.get(key, (INITIAL_STATUS, int(event["id"])))
        if row["status"] != expected:
            problems.append(StateProblem(
                "releases", row["id"], f"release {_ref(row)} is '{row['status']}', but the "
                f"audit trail says '{expected}' (event {source})"))
        if key in notes and row["notes"] != notes[key][0]:
            problems.append(StateProblem(
                "releases", row["id"], f"release {_ref(row)}: its notes differ from the text "
                f"event {notes[key][1]} set"))
    for key, (event, _) in registered.items():
        if key not in seen:
            problems.append(StateProblem("releases", None, f"release {key[0]}@{key[1]} "
                                         f"(registered in event {event['id']}) is missing"))
    return problems


@dataclass
class _Matched:
    """The rows of one table paired with the events that wrote them."""

    pairs: list[tuple[Row, dict[str, Any], Row]]  # (event, payload, row)
    problems: list[StateProblem]
    rows: dict[int, Row]
    accounted: set[int]


def _match(events: _Events, kinds: tuple[str, ...], key: str, table: str, noun: str,
           rows: Iterable[Row]) -> _Matched:
    """Pair each event of ``kinds`` with the row its payload's ``key`` names; a named row
    that is gone, and a row no event names, are problems."""
    by_id = _by_id(rows)
    matched = _Matched([], [], by_id, set())
    for event, payload in events(*kinds):
        row_id = payload.get(key)
        if not isinstance(row_id, int):
            continue
        matched.accounted.add(row_id)
        row = by_id.get(row_id)
        if row is None:
            matched.problems.append(StateProblem(table, row_id, f"{noun} {row_id} of "
                                                 f"{_ref(event)} (event {event['id']}) is "
                                                 "missing"))
        else:
            matched.pairs.append((event, payload, row))
    for row_id, row in by_id.items():
        if row_id not in matched.accounted:
            matched.problems.append(StateProblem(
                table, row_id, f"{noun} {row_id} of {_ref(row)} has no {' or '.join(kinds)} "
                "event: it was added outside devtrack"))
    return matched


RUN_FIELDS = ("status", "profile", "p50_ms", "peak_rss_mb")


def check_runs(events: _Events, runs: Iterable[Row]) -> list[StateProblem]:
    """Each run matches the figures (and samples digest) its bench event sealed."""
    matched = _match(events, ("bench",), "run", "runs", "run", runs)
    for event, payload, row in matched.pairs:
        changed = [f for f in RUN_FIELDS if f in payload and payload[f] != row.get(f)]
        if (row["model"], row["version"]) != (event["model"], event["version"]):
            changed.insert(0, "release")
        sealed_samples = payload.get("samples_sha256")
        if sealed_samples is not None and sealed_samples != row.get("samples_sha256"):
            changed.append("samples")
        if changed:
            matched.problems.append(StateProblem(
                "runs", row["id"], f"run {row['id']} of {_ref(event)}: {', '.join(changed)} "
                f"differ from what event {event['id']} recorded"))
    return matched.problems


def check_checks(events: _Events, checks: Iterable[Row]) -> list[StateProblem]:
    """Each stored check passed or failed as its event says."""
    matched = _match(events, ("check",), "check", "checks", "check", checks)
    for event, payload, row in matched.pairs:
        if "passed" in payload and bool(row["passed"]) != bool(payload["passed"]):
            sealed = "passed" if payload["passed"] else "failed"
            matched.problems.append(StateProblem(
                "checks", row["id"], f"check {row['id']} of {_ref(event)} on {row['profile']} "
                f"now reads {'passed' if row['passed'] else 'failed'}, but it {sealed} "
                f"(event {event['id']})"))
    return matched.problems


def check_deployments(events: _Events, deployments: Iterable[Row]) -> list[StateProblem]:
    """Each deployment matches its deploy/rollback event, and what is live on each profile
    is what the latest of those events put there."""
    matched = _match(events, ("deploy", "rollback"), "deployment", "deployments",
                     "deployment", deployments)
    problems = matched.problems
    latest: dict[tuple[str, str], tuple[int, Row]] = {}
    for event, payload in events("deploy", "rollback"):
        if isinstance(payload.get("deployment"), int):
            latest[(str(event["model"]), str(payload.get("profile")))] = (
                payload["deployment"], event)
    for event, payload, row in matched.pairs:
        expected = (event["model"], event["version"], payload.get("profile"), event["kind"])
        actual = (row["model"], row["version"], row["profile"], row["kind"])
        if expected != actual:
            problems.append(StateProblem(
                "deployments", row["id"], f"deployment {row['id']} reads {actual[3]} "
                f"{_ref(row)} on {actual[2]}, but event {event['id']} recorded {expected[3]} "
                f"{_ref(event)} on {expected[2]}"))
    live: dict[tuple[str, str], list[Row]] = {}
    for row in matched.rows.values():
        if row["ended_at"] is None:
            live.setdefault((row["model"], row["profile"]), []).append(row)
    for (model, profile), (dep_id, event) in latest.items():
        now = live.get((model, profile), [])
        if [int(r["id"]) for r in now] != [dep_id]:
            shown = ", ".join(_ref(r) for r in now) or "nothing"
            problems.append(StateProblem(
                "deployments", dep_id, f"{model} on {profile}: {shown} is live, but the last "
                f"{event['kind']} (event {event['id']}) made {_ref(event)} live"))
    return problems


def cross_check(events: Iterable[Row], releases: Iterable[Row], runs: Iterable[Row],
                checks: Iterable[Row], deployments: Iterable[Row]) -> list[StateProblem]:
    """Every disagreement between the tables and the (already verified) events.

    Rows carry ``model`` and ``version`` (joined in); runs may carry ``samples_sha256``.
    """
    indexed = _Events(events)
    return (check_releases(indexed, releases) + check_runs(indexed, runs)
            + check_checks(indexed, checks) + check_deployments(indexed, deployments))
