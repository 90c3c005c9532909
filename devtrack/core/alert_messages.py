"""Notification messages composed from plain decision data: one per check, bench or deploy.

Each message is plain text that reads the same in Slack, Teams and an e-mail: a title that
says what was decided about which release where, then a body a reviewer can act on without
opening anything else — what changed (verdict, ratio and CI, budget and value, a failed
run's reason), the release deployed there, and the command that reproduces the decision.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtrack.core.alerts import BUDGET, DEPLOY, FAILED_RUN, REGRESSION, ROLLBACK

# Apprise's notification types (what json:// posts as "type").
INFO, SUCCESS, WARNING, FAILURE = "info", "success", "warning", "failure"
REGRESSION_LIMITS = ("max_latency_regression_pct", "max_accuracy_drop")
_QUIET_STATUSES = ("pass", "skipped")
NOT_MEASURED = "not_measured"
# A failed latency check names its top per-operator contributors (the gate asks explain).
TOP_CONTRIBUTORS_LIMIT = 5


@dataclass(frozen=True)
class Message:
    """One notification: what every target receives for one decision."""

    title: str
    body: str
    level: str  # info | success | warning | failure
    events: tuple[str, ...]  # what it reports (regression, budget, ...); () = nothing significant
    decision: str  # check | bench | deploy | rollback | test
    model: str | None = None
    version: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # recorded with the attempt


def item_event(name: str, status: str = "fail") -> str:
    """The alert event a failing (or not measured) check item raises."""
    if status == NOT_MEASURED:  # no run that counts: the check could not judge
        return FAILED_RUN
    if name in REGRESSION_LIMITS:
        return REGRESSION
    if name == "run":
        return FAILED_RUN
    return BUDGET


def command_line(*words: str) -> str:
    """A shell command line, quoted where needed."""
    return " ".join(shlex.quote(w) for w in words)


def check_command(candidate: str, profiles: Iterable[str], baseline: str | None = None,
                  extra: Sequence[str] = ()) -> str:
    """``devtrack check kws@1.2 --profile ci-host --bench``: re-runs a check."""
    words = ["devtrack", "check", candidate]
    for name in profiles:
        words += ["--profile", name]
    if baseline:
        words += ["--baseline", baseline]
    return command_line(*words, *extra, "--bench")


def check_message(report: Mapping[str, Any], reproduce: str,
                  deployed: Mapping[str, str | None],
                  contributors: Mapping[str, Sequence[str]] | None = None,
                  context: str = "") -> Message:
    """The message for one ``check`` (``report``: ``CheckReport.to_dict()``).

    ``deployed``: the release live on each profile (None: nothing). ``contributors``: per
    profile, the operators that explain a latency change, when such data exists.
    ``context``: who ran it where and when, for the last line.
    """
    candidate = str(report["candidate"])
    model, _, version = candidate.partition("@")
    events: list[str] = []
    failed_profiles, lines = [], []
    headline: dict[str, str] = {}  # event -> its label in the title, e.g. "regression +23.1%"
    for p in report.get("profiles", []):
        profile = str(p["profile"])
        failing = [c for c in p.get("checks", []) if c.get("status") not in _QUIET_STATUSES]
        base = (f" (baseline {p['baseline']}, {p.get('baseline_source') or 'given'})"
                if p.get("baseline") else " (no baseline)")
        state = "passed"
        if failing:
            state = "NOT MEASURED" if p.get("status") == NOT_MEASURED else "FAILED"
        lines.append(f"{profile}: {state}{base}")
        for c in failing:
            event = item_event(str(c["name"]), str(c.get("status")))
            events.append(event)
            status = str(c.get("status"))
            how = "" if status == "fail" else f" ({status.replace('_', ' ')})"
            lines.append(f"  - {event}: {c['name']}{how}: {c['message']}")
        if failing and p.get("measure_with"):
            lines.append(f"  measure with: {p['measure_with']}")
        latency = p.get("latency")
        if latency and any(c["name"] == REGRESSION_LIMITS[0] for c in failing) and (
                latency.get("pct") is not None):
            headline.setdefault(REGRESSION, f"{REGRESSION} {latency['pct']:+.1f}%")
        if latency and latency.get("a_ms") is not None and latency.get("b_ms") is not None:
            lines.append(f"  p50 latency {latency['a_ms']:.3f} ms → {latency['b_ms']:.3f} ms: "
                         f"ratio {latency['ratio']:.3f}, 95% CI {latency['ci_low']:.3f}–"
                         f"{latency['ci_high']:.3f}, {latency['verdict']} (limit "
                         f"{latency['threshold_pct']:g}%, {latency.get('method', '')})")
        for op in (contributors or {}).get(profile, [])[:TOP_CONTRIBUTORS_LIMIT]:
            lines.append(f"  top contributor: {op}")
        live = deployed.get(profile)
        lines.append(f"  deployed on {profile}: {live or 'nothing'}")
        for note in dict.fromkeys(p.get("notes", [])):
            lines.append(f"  note: {note}")
        if failing:
            failed_profiles.append(profile)
    events = list(dict.fromkeys(events))
    profiles = [str(p["profile"]) for p in report.get("profiles", [])]
    if failed_profiles:
        labels = ", ".join(headline.get(e, e) for e in events)
        title = f"devtrack check FAILED: {candidate} on {', '.join(failed_profiles)} ({labels})"
        head = f"{candidate} failed its check on {', '.join(failed_profiles)}."
        level = FAILURE
    else:
        title = f"devtrack check passed: {candidate} on {', '.join(profiles) or 'no profile'}"
        head = f"{candidate} passed every budget and limit on {len(profiles)} profile(s)."
        level = SUCCESS
    body = [head, "", *lines, *[f"note: {n}" for n in report.get("notes", [])], "",
            f"Reproduce: {reproduce}"]
    if context:
        body.append(context)
    check_ids = [p.get("check_id") for p in report.get("profiles", []) if p.get("check_id")]
    return Message(title, "\n".join(body), level, tuple(events), "check", model, version,
                   {"candidate": candidate, "profiles": profiles, "failed": failed_profiles,
                    "checks": check_ids, "reproduce": reproduce})


def bench_message(runs: Sequence[Mapping[str, Any]],
                  breaches: Sequence[tuple[str, str, str]], reproduce: str,
                  deployed: Mapping[tuple[str, str], str | None], context: str = "") -> Message:
    """The message for one ``bench`` command.

    ``runs``: the runs it stored (model, version, profile, status, error, p50_ms, p90_ms,
    peak_rss_mb, id or run_id); ``breaches``: (ref, profile, budget message) of runs that
    break a budget of their profile; ``deployed``: (model, profile) → the live release.
    """
    events: list[str] = []
    lines = []
    for run in runs:
        ref = f"{run['model']}@{run['version']}"
        where = f"{ref} on {run['profile']}"
        if run.get("status") == "failed":
            events.append(FAILED_RUN)
            lines.append(f"- failed-run: {where}: {run.get('error') or 'no reason recorded'}")
        elif run.get("status") == "ok":
            p50, p90 = run.get("p50_ms"), run.get("p90_ms")
            figures = ", ".join(f"{k} {v:.3f} ms" for k, v in (("p50", p50), ("p90", p90))
                                if isinstance(v, int | float))
            peak = run.get("peak_rss_mb")
            if isinstance(peak, int | float):
                figures += f", peak memory {peak:.1f} MB"
            lines.append(f"- ok: {where}: {figures}")
        else:
            lines.append(f"- {run.get('status')}: {where}: {run.get('error') or ''}".rstrip())
    for ref, profile, text in breaches:
        events.append(BUDGET)
        lines.append(f"- budget: {ref} on {profile}: {text}")
    for (model, profile), live in sorted(deployed.items()):
        lines.append(f"deployed on {profile}: {live or f'no release of {model}'}")
    events = list(dict.fromkeys(events))
    refs = list(dict.fromkeys(f"{r['model']}@{r['version']}" for r in runs))
    failed = sum(1 for r in runs if r.get("status") == "failed")
    if events:
        what = []
        if failed:
            what.append(f"{failed} failed run(s)")
        if breaches:
            what.append(f"{len(breaches)} budget breach(es)")
        title = f"devtrack bench: {' and '.join(what)} for {', '.join(refs)}"
        level = FAILURE
    else:
        title = f"devtrack bench: {len(runs)} run(s) ok for {', '.join(refs)}"
        level = SUCCESS
    body = [title.removeprefix("devtrack bench: ").capitalize() + ".", "", *lines, "",
            f"Reproduce: {reproduce}"]
    if context:
        body.append(context)
    model, _, version = (refs[0] if len(refs) == 1 else "@").partition("@")
    return Message(title, "\n".join(body), level, tuple(events), "bench", model or None,
                   version or None,
                   {"releases": refs, "runs": [r.get("run_id") or r.get("id") for r in runs],
                    "reproduce": reproduce})


def bisect_message(result: Mapping[str, Any], reproduce: str, deployed: str | None,
                   context: str = "") -> Message:
    """The message for one ``bisect`` (``result``: ``BisectResult.to_dict()``): the first
    release that crossed the limit, each step's ratio, what was skipped, and why it is slower
    (explain's headline and top nodes). Finding one is a regression; finding none is quiet."""
    model = str(result["good"]).partition("@")[0]
    profile = result["profile"]
    first_bad = result.get("first_bad")
    steps = [s for s in result.get("steps", []) if s.get("ratio") is not None]
    lines = [f"- {s['ref']}: ×{s['ratio']:.3f} (95% CI {s['ci_low']:.3f}–{s['ci_high']:.3f}) "
             f"{s['verdict']}" for s in steps]
    lines += [f"- {s['ref']}: skipped ({s.get('reason') or 'no reason recorded'})"
              for s in result.get("skipped", [])]
    explanation = result.get("explanation") or {}
    why = []
    if explanation.get("headline"):
        why.append(f"Why: {explanation['headline']}")
    for node in (explanation.get("nodes") or [])[:TOP_CONTRIBUTORS_LIMIT]:
        share = node.get("share")
        share_text = f", {share:.0%} of the change" if isinstance(share, int | float) else ""
        delta = node.get("delta_ms")
        delta_text = f" {delta:+.3f} ms" if isinstance(delta, int | float) else ""
        why.append(f"- {node['status']} {node['op']} {node['name']}:{delta_text}{share_text}")
    limit = f"{result['threshold_pct']:g}%"
    if first_bad:
        maybe = result.get("maybe_skipped") or []
        also = f" (or one of the skipped {', '.join(maybe)})" if maybe else ""
        title = (f"devtrack bisect: {first_bad} is the first release of {model} slower "
                 f"than {limit} on {profile}{also}")
        events: tuple[str, ...] = (REGRESSION,)
        level = FAILURE
    else:
        title = (f"devtrack bisect: no release of {model} between {result['good']} and "
                 f"{result['bad']} is slower than {limit} on {profile}")
        events = ()
        level = SUCCESS
    body = [title.removeprefix("devtrack bisect: ").capitalize() + ".",
            f"Last good: {result.get('last_good') or '-'}; "
            f"{result.get('measurements', 0)} side-by-side measurements against "
            f"{result['good']} ({result.get('path_kind', 'path')}).", "", *lines]
    if why:
        body += ["", *why]
    body += ["", f"deployed on {profile}: {deployed or f'no release of {model}'}",
             f"Reproduce: {reproduce}"]
    if context:
        body.append(context)
    version = str(first_bad).partition("@")[2] if first_bad else None
    return Message(title, "\n".join(body), level, events, "bisect", model, version,
                   {"first_bad": first_bad, "good": result["good"], "bad": result["bad"],
                    "profile": profile, "reproduce": reproduce})


def deployment_message(deployment: Mapping[str, Any], context: str = "") -> Message:
    """Who put what live where and why (``deployment``: ``Deployment.to_dict()``)."""
    kind = str(deployment["kind"])
    ref = f"{deployment['model']}@{deployment['version']}"
    profile = deployment["profile"]
    replaced = (f"{deployment['model']}@{deployment['replaced']}" if deployment.get("replaced")
                else "nothing")
    verb = "rolled back to" if kind == ROLLBACK else "deployed"
    title = f"devtrack {kind}: {ref} {'is live' if kind == ROLLBACK else 'deployed'} on {profile}"
    lines = [f"{deployment['deployed_by']} {verb} {ref} on {profile}.", "",
             f"who: {deployment['deployed_by']}",
             f"what: {ref} (replaces {replaced})",
             f"where: {profile}",
             f"why: {deployment['reason']}",
             f"when: {deployment['deployed_at']}"]
    if deployment.get("forced"):
        lines.append("forced: deployed without a passing check (the override is recorded)")
    elif deployment.get("check_id"):
        lines.append(f"check: #{deployment['check_id']} passed")
    history = command_line("devtrack", "history", str(deployment["model"]), "--profile",
                           str(profile))
    lines += ["", f"History: {history}"]
    if context:
        lines.append(context)
    return Message(title, "\n".join(lines), WARNING if kind == ROLLBACK else INFO,
                   (ROLLBACK if kind == ROLLBACK else DEPLOY,), kind,
                   str(deployment["model"]), str(deployment["version"]),
                   {"deployment": deployment.get("id"), "profile": profile})


def sample_message(context: str = "") -> Message:
    """What ``devtrack alerts test`` sends: shaped like a real failed check."""
    body = ("This is a test notification from devtrack: if you can read it, alerts reach "
            "this target.\n\nA real one looks like this:\n"
            "kws@1.2.0 failed its check on ci-host.\n"
            "ci-host: FAILED (baseline kws@1.1.0, deployed)\n"
            "  - regression: max_latency_regression_pct: p50 latency +23.1% (ratio 1.23, "
            "95% CI 1.21–1.25) vs kws@1.1.0 exceeds max_latency_regression_pct 5\n"
            "  deployed on ci-host: kws@1.1.0\n"
            "Reproduce: devtrack check kws@1.2.0 --profile ci-host --bench")
    if context:
        body += "\n\n" + context
    return Message("devtrack test notification", body, INFO, (), "test")
