"""Cross-checking the workspace's tables against its audit trail (pure functions).

The hash chain seals the events; the tables a user reads (releases, runs and their
evaluations, checks, deployments, datasets) are derived from the same changes. Every change
writes its row and its event in one transaction, so a row that disagrees with the sealed event
of its change, or a row no event accounts for, was edited or added by hand.

An event seals what its writer knew; older devtrack versions sealed less. A part whose key is
not in an event's payload is not checked, so an older workspace never shows a false problem.
The digests below are computed by the same function when the event is written and when it is
checked; their field lists are frozen (a different list needs a new payload key).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

Row = Mapping[str, Any]
INITIAL_STATUS = "candidate"

# What a bench event's ``fields_sha256`` seals of its run: every stored column but the id,
# the release (checked against the event's model and version) and the samples (sealed apart).
RUN_SEALED_FIELDS = (
    "profile", "profile_hash", "profile_snapshot", "status", "error", "started_at",
    "finished_at", "actor", "host", "runtime", "runtime_version", "import_ms", "init_ms",
    "first_ms", "warmup_ms", "n", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms",
    "min_ms", "max_ms", "cv", "ci_low_ms", "ci_high_ms", "stop_reason", "baseline_rss_mb",
    "load_peak_mb", "load_delta_mb", "inference_peak_mb", "peak_rss_mb", "memory_method",
    "inputs", "environment", "warnings", "op_profile", "details",
)
# What a register event's ``fields_sha256`` seals of its release: what never changes after
# registration but the artifact (sealed as ``sha256``); ``parent`` is the parent's version.
# Status and notes change through their own events.
RELEASE_SEALED_FIELDS = (
    "parent", "data_version", "data_sha256", "config", "run_id", "tags", "input_specs",
    "fills", "source_name", "git_commit", "git_dirty", "created_by", "host", "created_at",
    "devtrack_version", "summary",
)
# What a bench event's ``evaluation_sha256`` seals of its evaluation row beyond the dataset,
# accuracy and non-finite count it names one by one (``reference`` is the fidelity reference
# as MODEL@VERSION, ``predictions_sha256`` the digest of the per-sample predictions).
EVALUATION_SEALED_FIELDS = (
    "run_id", "task", "metrics", "predictions_sha256", "reference", "fidelity", "created_at",
)
# What a compare event's ``fields_sha256`` (or a check event's ``comparison_sha256``, for the
# side-by-side measurement the check made) seals of a comparison beyond the status, ratio,
# verdict and baseline named one by one (``ratios_sha256``: the digest of the block ratios).
COMPARISON_SEALED_FIELDS = (
    "profile_hash", "error", "ci_low", "ci_high", "ratios_sha256", "details", "created_at",
    "actor",
)
# What a dataset_add event's ``fields_sha256`` seals beyond the keys it names one by one.
DATASET_SEALED_FIELDS = ("arrays", "has_labels", "created_at", "created_by")
# Labels that read as plurals in "… differ from what event N recorded".
_PLURAL_LABELS = frozenset({"samples", "stored fields"})


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


def text_digest(text: str) -> str:
    """What an event seals of a stored text (release notes, a check's report)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _fields_digest(row: Row, fields: tuple[str, ...]) -> str:
    canonical = json.dumps({f: row.get(f) for f in fields}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_fields_digest(row: Row) -> str:
    """What a bench event seals of its run's RUN_SEALED_FIELDS. Give it the values as SQLite
    returns them (store_run reads the row back), so writing and checking see the same."""
    return _fields_digest(row, RUN_SEALED_FIELDS)


def release_fields_digest(row: Row) -> str:
    """What a register event seals of its release's RELEASE_SEALED_FIELDS."""
    return _fields_digest(row, RELEASE_SEALED_FIELDS)


def evaluation_fields_digest(row: Row) -> str:
    """What a bench event seals of its evaluation's EVALUATION_SEALED_FIELDS (read back from
    the database, as verify reads them)."""
    return _fields_digest(row, EVALUATION_SEALED_FIELDS)


def comparison_fields_digest(row: Row) -> str:
    """What a compare (or check) event seals of a comparison's COMPARISON_SEALED_FIELDS."""
    return _fields_digest(row, COMPARISON_SEALED_FIELDS)


def dataset_fields_digest(row: Row) -> str:
    """What a dataset_add event seals of its dataset's DATASET_SEALED_FIELDS."""
    return _fields_digest(row, DATASET_SEALED_FIELDS)


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


def _as_stored(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _same(sealed: Any, stored: Any) -> bool:
    """Equal as stored: SQLite keeps a NaN as NULL."""
    return bool(_as_stored(sealed) == _as_stored(stored))


def _differ(labels: list[str], event: Row) -> str:
    plural = len(labels) > 1 or labels[0] in _PLURAL_LABELS
    return (f"{', '.join(labels)} {'differ' if plural else 'differs'} from what event "
            f"{event['id']} recorded")


# What an import event seals: each list names the kind of event that would have sealed its
# entries had they been written here (see devtrack/bundles.py).
IMPORT_SEALS = (("releases", "register"), ("datasets", "dataset_add"), ("runs", "bench"))


def _imported(event: Row, payload: dict[str, Any]) -> list[tuple[str, Row, dict[str, Any]]]:
    """The register, dataset_add and bench seals an import event carries, each as the event
    it stands for (same id and time; the entry's model and version)."""
    found: list[tuple[str, Row, dict[str, Any]]] = []
    for key, kind in IMPORT_SEALS:
        entries = payload.get(key)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict):
                found.append((kind, {**event, "kind": kind, "model": entry.get("model"),
                                     "version": entry.get("version")}, entry))
    return found


def _bisect_steps(event: Row, payload: dict[str, Any]) -> list[tuple[Row, dict[str, Any]]]:
    """The measured steps a bisect event seals, each as the compare event it stands for
    (same id and time; the step's release): one side-by-side measurement against the good
    release, stored in ``comparisons``."""
    steps = payload.get("steps")
    return [({**event, "kind": "compare", "version": step.get("version")}, step)
            for step in (steps if isinstance(steps, list) else ())
            if isinstance(step, dict) and isinstance(step.get("comparison"), int)]


class _Events:
    """The events of each kind with their payloads, in id order; an import event also counts
    as the register, dataset_add and bench events whose seals it carries, and a bisect event
    as a compare event per measured step."""

    def __init__(self, events: Iterable[Row]) -> None:
        self.of_kind: dict[str, list[tuple[Row, dict[str, Any]]]] = {}
        for event in events:
            payload = _payload(event)
            self.of_kind.setdefault(str(event["kind"]), []).append((event, payload))
            if event["kind"] == "import":
                for kind, standing, entry in _imported(event, payload):
                    self.of_kind.setdefault(kind, []).append((standing, entry))
            elif event["kind"] == "bisect":
                for standing, entry in _bisect_steps(event, payload):
                    self.of_kind.setdefault("compare", []).append((standing, entry))

    def __call__(self, *kinds: str) -> list[tuple[Row, dict[str, Any]]]:
        found = [pair for kind in kinds for pair in self.of_kind.get(kind, [])]
        return sorted(found, key=lambda pair: int(pair[0]["id"]))


def check_releases(events: _Events, releases: Iterable[Row]) -> list[StateProblem]:
    """Each release was registered (same bytes and, when sealed, the same fields) and has the
    status its promotions left and the notes its last notes event set (or, before any, the
    notes it was registered with)."""
    problems: list[StateProblem] = []
    registered = {(e["model"], e["version"]): (e, p) for e, p in events("register")}
    first_use: dict[str, Row] = {}
    for e, p in events("register"):
        if isinstance(p.get("sha256"), str):
            first_use.setdefault(p["sha256"], e)
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
        if key in notes:
            if row["notes"] != notes[key][0]:
                problems.append(StateProblem(
                    "releases", row["id"], f"release {_ref(row)}: its notes differ from the "
                    f"text event {notes[key][1]} set"))
        elif "notes_sha256" in payload and payload["notes_sha256"] != text_digest(
                str(row["notes"])):
            problems.append(StateProblem(
                "releases", row["id"], f"release {_ref(row)}: its notes differ from the text "
                f"event {event['id']} registered"))
        artifact = [label for key, label in (("size_bytes", "artifact size"),
                                             ("format", "artifact format"))
                    if key in payload and key in row and payload[key] != row[key]]
        first = first_use.get(str(row["artifact_sha256"]))
        if (first is not None and first["id"] == event["id"] and "artifact_created_at" in row
                and row["artifact_created_at"] != event.get("ts")):
            artifact.append("artifact created_at")  # stored by the first register of it
        if artifact:
            problems.append(StateProblem(
                "artifacts", None, f"release {_ref(row)}: {_differ(artifact, event)}"))
        if "fields_sha256" in payload and payload["fields_sha256"] != release_fields_digest(row):
            problems.append(StateProblem(
                "releases", row["id"], f"release {_ref(row)}: "
                f"{_differ(['stored fields'], event)} (parent, data, config, tags, specs, "
                "provenance)"))
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
           rows: Iterable[Row], accounted_elsewhere: Iterable[int] = ()) -> _Matched:
    """Pair each event of ``kinds`` with the row its payload's ``key`` names; a named row
    that is gone, and a row neither an event nor ``accounted_elsewhere`` names, are
    problems."""
    by_id = _by_id(rows)
    matched = _Matched([], [], by_id, set(accounted_elsewhere))
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


RUN_FIELDS = ("status", "profile", "p50_ms", "peak_rss_mb")  # sealed one by one, named


def snapshot_conditions_hash(snapshot: str | None) -> str:
    """The run identity a stored profile snapshot gives ('' for a damaged one, which the
    migration that computed the column also gave)."""
    from devtrack.core.conditions import conditions_hash

    try:
        data = json.loads(snapshot or "{}")
    except ValueError:
        return ""
    return conditions_hash(data) if isinstance(data, dict) else ""


def check_runs(events: _Events, runs: Iterable[Row]) -> list[StateProblem]:
    """Each run matches the figures, the digest of its other stored fields and the samples
    digest its bench event sealed; its identity (``conditions_hash``, which decides whether
    it counts) is the one its sealed profile snapshot gives."""
    matched = _match(events, ("bench",), "run", "runs", "run", runs)
    for event, payload, row in matched.pairs:
        changed = [f for f in RUN_FIELDS if f in payload and not _same(payload[f], row.get(f))]
        if (row["model"], row["version"]) != (event["model"], event["version"]):
            changed.insert(0, "release")
        if "fields_sha256" in payload and payload["fields_sha256"] != row.get("fields_sha256"):
            changed.append("stored fields")
        sealed_samples = payload.get("samples_sha256")
        if sealed_samples is not None and sealed_samples != row.get("samples_sha256"):
            changed.append("samples")
        if ("snapshot_conditions_hash" in row
                and row.get("conditions_hash") != row["snapshot_conditions_hash"]):
            changed.append("run identity (conditions_hash)")
        if changed:
            hint = (" (statistics, phases, memory, inputs, op profile, runtime, environment)"
                    if "stored fields" in changed else "")
            matched.problems.append(StateProblem(
                "runs", row["id"], f"run {row['id']} of {_ref(event)}: "
                f"{_differ(changed, event)}{hint}"))
    return matched.problems


def check_evaluations(events: _Events, evaluations: Iterable[Row]) -> list[StateProblem]:
    """Each evaluation a bench event sealed is stored once, as sealed (its dataset, accuracy
    and non-finite count by name, every other field by digest); a run whose event says it
    was not evaluated has no evaluation. Runs whose event sealed neither are not judged."""
    problems: list[StateProblem] = []
    of_run: dict[int, list[Row]] = {}
    for row in evaluations:
        of_run.setdefault(int(row["run_id"]), []).append(row)
    for event, payload in events("bench"):
        run_id = payload.get("run")
        if not isinstance(run_id, int):
            continue
        rows = of_run.get(run_id, [])
        where = f"run {run_id} ({_ref(event)})"
        if "evaluation" in payload:
            problems += _sealed_evaluation(event, payload, rows, where)
        elif "dataset" in payload:
            problems += _named_evaluation(event, payload, rows, where)
    return problems


def _evaluation_changes(payload: Row, row: Row) -> list[str]:
    changed = [] if row["dataset"] == payload.get("dataset", row["dataset"]) else ["dataset"]
    if "accuracy" in payload and not _same(payload["accuracy"], row["accuracy"]):
        changed.append("accuracy")
    if "nonfinite" in payload and int(payload["nonfinite"] or 0) != int(row["nonfinite"] or 0):
        changed.append("nonfinite")
    return changed


def _sealed_evaluation(event: Row, payload: Row, rows: list[Row],
                       where: str) -> list[StateProblem]:
    problems = []
    sealed = payload["evaluation"]
    for row in rows:
        if row["id"] != sealed:
            problems.append(StateProblem(
                "evaluations", int(row["id"]), f"evaluation {row['id']} of {where} is not the "
                f"one event {event['id']} recorded: it was added outside devtrack"))
            continue
        changed = _evaluation_changes(payload, row)
        if ("evaluation_sha256" in payload
                and payload["evaluation_sha256"] != evaluation_fields_digest(row)):
            changed.append("stored fields")
        if changed:
            hint = (" (metrics, predictions, fidelity, reference)" if "stored fields" in changed
                    else "")
            problems.append(StateProblem(
                "evaluations", int(row["id"]), f"evaluation {row['id']} of {where}: "
                f"{_differ(changed, event)}{hint}"))
    if isinstance(sealed, int) and sealed not in {int(r["id"]) for r in rows}:
        problems.append(StateProblem(
            "evaluations", sealed, f"evaluation {sealed} of {where} on "
            f"{payload.get('dataset')} (event {event['id']}) is missing"))
    return problems


def _named_evaluation(event: Row, payload: Row, rows: list[Row],
                      where: str) -> list[StateProblem]:
    """Events before evaluation ids were sealed: the dataset, accuracy and count only."""
    if not rows:
        return [StateProblem("evaluations", None, f"evaluation of {where} on "
                             f"{payload['dataset']} (event {event['id']}) is missing")]
    problems = []
    if len(rows) > 1:
        problems.append(StateProblem(
            "evaluations", int(rows[1]["id"]), f"{where} has {len(rows)} evaluations, "
            f"but event {event['id']} recorded one"))
    for row in rows:
        changed = _evaluation_changes(payload, row)
        if changed:
            problems.append(StateProblem(
                "evaluations", int(row["id"]), f"evaluation {row['id']} of {where}: "
                f"{_differ(changed, event)}"))
    return problems


def check_checks(events: _Events, checks: Iterable[Row]) -> list[StateProblem]:
    """Each stored check passed or failed as its event says, on the release, profile and
    report it sealed."""
    matched = _match(events, ("check",), "check", "checks", "check", checks)
    for event, payload, row in matched.pairs:
        where = f"check {row['id']} of {_ref(event)} on {row['profile']}"
        if "passed" in payload and bool(row["passed"]) != bool(payload["passed"]):
            sealed = "passed" if payload["passed"] else "failed"
            matched.problems.append(StateProblem(
                "checks", row["id"], f"{where} now reads "
                f"{'passed' if row['passed'] else 'failed'}, but it {sealed} "
                f"(event {event['id']})"))
        changed = []
        if (row["model"], row["version"]) != (event["model"], event["version"]):
            changed.append("release")
        if "profile" in payload and payload["profile"] != row["profile"]:
            changed.append("profile")
        if "baseline" in payload and "baseline" in row and payload["baseline"] != row["baseline"]:
            changed.append("baseline")
        if "actor" in row and row["actor"] != event.get("actor"):
            changed.append("actor")
        if "created_at" in row and row["created_at"] != event.get("ts"):
            changed.append("created_at")
        if isinstance(payload.get("profile_hash"), str) and not str(
                row["profile_hash"]).startswith(payload["profile_hash"]):
            changed.append("profile_hash")
        if "report_sha256" in payload and payload["report_sha256"] != text_digest(
                str(row["report"])):
            changed.append("report")
        if changed:
            matched.problems.append(StateProblem("checks", row["id"],
                                                 f"{where}: {_differ(changed, event)}"))
    return matched.problems


def _same_ratio(sealed: Any, stored: Any) -> bool:
    if sealed is None or stored is None:
        return sealed is None and stored is None
    return math.isclose(float(sealed), float(stored), rel_tol=1e-9)


def check_comparisons(events: _Events, comparisons: Iterable[Row],
                      checks: Iterable[Row]) -> list[StateProblem]:
    """Each stored side-by-side measurement has the status, ratio and verdict its compare,
    explain or bisect event sealed; those a check made are accounted for by that check's
    sealed report."""
    by_checks = []
    for check in checks:
        try:
            comparison_id = json.loads(str(check["report"])).get("comparison_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(comparison_id, int):
            by_checks.append(comparison_id)
    matched = _match(events, ("compare", "explain"), "comparison", "comparisons",
                     "comparison", comparisons, accounted_elsewhere=by_checks)
    for event, payload in events("check"):  # the side-by-side measurement a check made
        comparison_id = payload.get("comparison")
        if not isinstance(comparison_id, int) or "comparison_sha256" not in payload:
            continue
        row = matched.rows.get(comparison_id)
        if row is None:
            matched.problems.append(StateProblem(
                "comparisons", comparison_id, f"comparison {comparison_id} of {_ref(event)} "
                f"(check event {event['id']}) is missing"))
        elif payload["comparison_sha256"] != comparison_fields_digest(row):
            matched.problems.append(StateProblem(
                "comparisons", comparison_id, f"comparison {comparison_id} of {_ref(event)} on "
                f"{row['profile']}: {_differ(['stored fields'], event)} (confidence interval, "
                "block ratios, details)"))
    for event, payload, row in matched.pairs:
        changed: list[str] = [key for key in ("status", "verdict") if key in payload
                              and payload[key] != row[key]]
        if "ratio" in payload and not _same_ratio(payload["ratio"], row["ratio"]):
            changed.append("ratio")
        if "baseline" in payload and "baseline" in row and payload["baseline"] != row["baseline"]:
            changed.append("baseline")
        if "fields_sha256" in payload and payload["fields_sha256"] != comparison_fields_digest(
                row):
            changed.append("stored fields")
        if (row["model"], row["version"]) != (event["model"], event["version"]):
            changed.insert(0, "release")
        if changed:
            matched.problems.append(StateProblem(
                "comparisons", row["id"], f"comparison {row['id']} of {_ref(event)} on "
                f"{row['profile']}: {_differ(changed, event)}"))
    return matched.problems


def check_deployments(events: _Events, deployments: Iterable[Row]) -> list[StateProblem]:
    """Each deployment matches its deploy/rollback event (release, profile, kind, reason,
    what it replaced, the check it relied on, whether it was forced), and what is live on
    each profile is what the latest of those events put there."""
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
        changed = []
        if event.get("reason") is not None and event["reason"] != row["reason"]:
            changed.append("reason")
        if "replaced" in payload and payload["replaced"] != row.get("replaced"):
            changed.append("replaced")
        if "check" in payload and payload["check"] != row.get("check_id"):
            changed.append("check")
        if "forced" in payload and bool(payload["forced"]) != bool(row.get("forced")):
            changed.append("forced")
        if "deployed_by" in row and row["deployed_by"] != event.get("actor"):
            changed.append("deployed_by")
        if "deployed_at" in payload and payload["deployed_at"] != row.get("deployed_at"):
            changed.append("deployed_at")
        if changed:
            problems.append(StateProblem(
                "deployments", row["id"], f"deployment {row['id']} of {_ref(row)} on "
                f"{row['profile']}: {_differ(changed, event)}"))
    problems += _check_ended(matched)
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


def _check_ended(matched: _Matched) -> list[StateProblem]:
    """A replaced deployment ended when its successor on the profile was deployed (the time
    that successor's event sealed)."""
    problems = []
    sealed_at = {int(row["id"]): (payload["deployed_at"], event) for event, payload, row
                 in matched.pairs if "deployed_at" in payload}
    lines: dict[tuple[str, str], list[Row]] = {}
    for row_id in sorted(matched.rows):
        row = matched.rows[row_id]
        lines.setdefault((str(row["model"]), str(row["profile"])), []).append(row)
    for rows in lines.values():
        for before, after in pairwise(rows):
            sealed = sealed_at.get(int(after["id"]))
            if sealed is not None and before.get("ended_at") != sealed[0]:
                problems.append(StateProblem(
                    "deployments", int(before["id"]), f"deployment {before['id']} of "
                    f"{_ref(before)} on {before['profile']}: its end differs from when "
                    f"deployment {after['id']} replaced it (event {sealed[1]['id']})"))
    return problems


DATASET_FIELDS = ("sha256", "task", "samples", "source_name")


def check_datasets(events: _Events, datasets: Iterable[Row]) -> list[StateProblem]:
    """Each dataset a dataset_add event sealed is stored under its name with the same file
    hash, task, sample count and source file name (and, when sealed, the same arrays, labels
    flag, time and creator); a dataset no event added was added by hand."""
    problems: list[StateProblem] = []
    by_name = {str(row["name"]): row for row in datasets}
    added = set()
    for event, payload in events("dataset_add"):
        name = payload.get("dataset")
        if not isinstance(name, str):
            continue
        added.add(name)
        row = by_name.get(name)
        if row is None:
            problems.append(StateProblem("datasets", None, f"dataset {name} (added in event "
                                         f"{event['id']}) is missing"))
            continue
        changed = [f for f in DATASET_FIELDS if f in payload and payload[f] != row.get(f)]
        if "fields_sha256" in payload and payload["fields_sha256"] != dataset_fields_digest(row):
            changed.append("stored fields")
        if changed:
            hint = " (arrays, labels, created)" if "stored fields" in changed else ""
            problems.append(StateProblem("datasets", int(row["id"]), f"dataset {name}: "
                                         f"{_differ(changed, event)}{hint}"))
    for name, row in by_name.items():
        if name not in added:
            problems.append(StateProblem("datasets", int(row["id"]), f"dataset {name} has no "
                                         "dataset_add event: it was added outside devtrack"))
    return problems


def check_models(events: _Events, models: Iterable[Row]) -> list[StateProblem]:
    """Each model line was opened by a register event, has the task its register events
    sealed and the default dataset its last dataset_default event set (none before one)."""
    problems: list[StateProblem] = []
    registers: dict[str, list[tuple[Row, dict[str, Any]]]] = {}
    for event, payload in events("register"):
        registers.setdefault(str(event["model"]), []).append((event, payload))
    defaults: dict[str, tuple[Any, int]] = {}
    for event, payload in events("dataset_default"):
        if "dataset" in payload:
            defaults[str(event["model"])] = (payload["dataset"], int(event["id"]))
    for row in models:
        name = str(row["name"])
        if name not in registers:
            problems.append(StateProblem("models", int(row["id"]), f"model line {name} has no "
                                         "register event: it was added outside devtrack"))
            continue
        changed = []
        sealed = next(((e, p) for e, p in registers[name] if "task" in p), None)
        if sealed is not None and sealed[1]["task"] != row["task"]:
            changed.append(("task", sealed[0]))
        opened = registers[name][0][0]  # the register that opened the line, at its time
        if "created_at" in row and row["created_at"] != opened.get("ts"):
            changed.append(("created_at", opened))
        for label, event in changed:
            problems.append(StateProblem(
                "models", int(row["id"]), f"model line {name}: {_differ([label], event)}"))
        expected, source = defaults.get(name, (None, None))
        if row["default_dataset"] != expected:
            now = row["default_dataset"]
            said = (f"the audit trail says {'none' if expected is None else expected} (event "
                    f"{source})" if source is not None else "no dataset_default event set one")
            problems.append(StateProblem(
                "models", int(row["id"]), f"model line {name}: its default dataset is "
                f"{'none' if now is None else now}, but {said}"))
    return problems


def cross_check(events: Iterable[Row], *, releases: Iterable[Row], runs: Iterable[Row],
                evaluations: Iterable[Row], checks: Iterable[Row],
                deployments: Iterable[Row], datasets: Iterable[Row],
                comparisons: Iterable[Row] = (),
                models: Iterable[Row] = ()) -> list[StateProblem]:
    """Every disagreement between the tables and the (already verified) events.

    Rows carry ``model`` and ``version`` (joined in). Releases carry ``parent`` (the
    parent's version) and the RELEASE_SEALED_FIELDS; runs carry ``samples_sha256`` and
    ``fields_sha256`` (see run_fields_digest) instead of the samples and those fields;
    evaluations carry ``run_id`` and ``dataset`` (its name); deployments carry ``replaced``
    (the replaced release's version); models carry ``name``, ``task`` and
    ``default_dataset``.
    """
    indexed = _Events(events)
    checks = list(checks)
    return (check_releases(indexed, releases) + check_runs(indexed, runs)
            + check_evaluations(indexed, evaluations) + check_checks(indexed, checks)
            + check_comparisons(indexed, comparisons, checks)
            + check_deployments(indexed, deployments) + check_datasets(indexed, datasets)
            + check_models(indexed, models))
