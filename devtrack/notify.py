"""Alerts: who wants a decision (check, bench, deploy, rollback), send it, record each attempt.

Targets come from three places, each with its own ``on`` list: ``--notify URL`` on the
command line (every significant event), the ``[alerts]`` table of the workspace's
``.devtrack/config.toml``, and the ``[alerts]`` table of each device profile the decision
concerns. A decision that found nothing significant is sent only to targets with
``on = ["all"]``. Delivery never changes a command's result: failures come back as warning
lines, and every attempt is recorded as one ``notify`` audit event with its targets masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtrack.core.aggregate_runs import budget_latency_ms
from devtrack.core.alert_messages import (
    Message,
    bench_message,
    bisect_message,
    check_command,
    command_line,
    deployment_message,
    sample_message,
)
from devtrack.core.alerts import (
    DEFAULT_ON,
    DEFAULT_TIMEOUT_S,
    AlertSettings,
    check_url,
    mask_secrets,
    mask_url,
    validate_alerts,
)
from devtrack.core.budgets import FAIL, Figures, evaluate_budgets
from devtrack.core.profile import Profile
from devtrack.errors import DevtrackError, UsageError
from devtrack.workspace import Workspace
from devtrack.workspace_config import CONFIG_FILENAME, DOT_DIR, config_path, read_config

EVENT_KIND = "notify"
CLI_SOURCE = "--notify"


@dataclass(frozen=True)
class Target:
    """One URL and the events it wants, with where that was configured."""

    url: str
    on: tuple[str, ...]
    source: str  # "--notify", ".devtrack/config.toml", "profile ci-host"
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.masked, "on": list(self.on), "source": self.source,
                "timeout_s": self.timeout_s}


@dataclass
class Outcome:
    """What happened to one decision's notification: nothing sent, or each attempt."""

    message: Message | None = None
    attempts: list[Any] = field(default_factory=list)  # delivery.Attempt
    warnings: list[str] = field(default_factory=list)  # one line each, for stderr

    @property
    def sent(self) -> bool:
        return self.message is not None


def workspace_alerts(root: Path | None) -> AlertSettings:
    """The ``[alerts]`` table of the workspace config (empty when there is none)."""
    data = read_config(root)
    if "alerts" not in data or root is None:
        return AlertSettings()
    return validate_alerts(data["alerts"], str(config_path(root)))


def cli_targets(urls: Iterable[str]) -> list[Target]:
    """``--notify`` URLs, checked (UsageError naming the option); they want every event."""
    return [Target(check_url(u, CLI_SOURCE), DEFAULT_ON, CLI_SOURCE) for u in urls]


@dataclass(frozen=True)
class Plan:
    """The targets known before a decision: ``--notify`` and the workspace config.
    Made before anything is measured, so a bad URL or ``on`` value fails first."""

    root: Path | None
    targets: tuple[Target, ...]


def plan(root: Path | None, cli_urls: Iterable[str]) -> Plan:
    """Check ``--notify`` URLs and the workspace's ``[alerts]``; UsageError on the first
    problem, before any work."""
    targets = cli_targets(cli_urls)
    settings = workspace_alerts(root)
    source = f"{DOT_DIR}/{CONFIG_FILENAME}"
    targets += [Target(u, settings.on, source, settings.timeout_s) for u in settings.urls]
    return Plan(root, tuple(targets))


def targets_with_profiles(base: Plan, profiles: Iterable[Profile]) -> list[Target]:
    """``base``'s targets and those of each profile's ``[alerts]``, one per URL (their
    ``on`` lists merged, the shortest timeout kept)."""
    found: list[Target] = list(base.targets)
    for profile in profiles:
        settings = profile.alerts
        found += [Target(u, settings.on, f"profile {profile.name}", settings.timeout_s)
                  for u in settings.urls]
    merged: dict[str, Target] = {}
    for t in found:
        old = merged.get(t.url)
        merged[t.url] = t if old is None else Target(
            t.url, tuple(dict.fromkeys(old.on + t.on)), f"{old.source}, {t.source}",
            min(old.timeout_s, t.timeout_s))
    return list(merged.values())


def send(ws: Workspace | None, message: Message, targets: Sequence[Target]) -> Outcome:
    """Send ``message`` to the targets that want its events; record the attempts."""
    chosen = [t for t in targets if AlertSettings((), t.on).wants(message.events)]
    if not chosen:
        return Outcome()
    from devtrack.delivery import deliver

    timeout = min(t.timeout_s for t in chosen)
    attempts = deliver([t.url for t in chosen], message.title, message.body, message.level,
                       timeout)
    outcome = Outcome(message, attempts)
    for target, attempt in zip(chosen, attempts, strict=True):
        if not attempt.delivered:
            outcome.warnings.append(f"warning: notification to {attempt.target} "
                                    f"({target.source}) not delivered: {attempt.error}")
    if ws is not None:
        _record(ws, message, chosen, attempts, outcome)
    return outcome


def _record(ws: Workspace, message: Message, targets: Sequence[Target],
            attempts: Sequence[Any], outcome: Outcome) -> None:
    from devtrack.provenance import current_user

    urls = [t.url for t in targets]
    # Keys chosen so that the log's one-line summary (keys in sorted order) reads well.
    payload = {
        "decision": message.decision,
        "delivered": f"{sum(1 for a in attempts if a.delivered)}/{len(attempts)}",
        "events": list(message.events), "level": message.level,
        "targets": [{**a.to_dict(), "source": t.source}
                    for t, a in zip(targets, attempts, strict=True)],
        "title": mask_secrets(message.title, urls),
        "what": message.facts,
    }
    try:
        with ws.store.transaction():
            ws.store.append_event(actor=current_user(), kind=EVENT_KIND, model=message.model,
                                  version=message.version, payload=payload)
    except DevtrackError as exc:  # the decision is stored; only the record of sending is lost
        outcome.warnings.append(f"warning: the notification attempt was not recorded: {exc}")


def context_line() -> str:
    """``Sent by devtrack 0.4.0 for alice on ci-runner-3 at 2026-…Z``."""
    from devtrack.provenance import current_host, current_user, devtrack_version
    from devtrack.store import utc_now

    return (f"Sent by devtrack {devtrack_version()} for {current_user()} on {current_host()} "
            f"at {utc_now()}")


# --- one function per decision --------------------------------------------------------------

def notify_check(ws: Workspace, base: Plan, report: Any) -> Outcome:
    """Notify about one ``check`` (``report``: a ``gate.CheckReport``)."""
    from devtrack.profiles import load_profile

    data = report.to_dict()
    names = [p["profile"] for p in data["profiles"]]
    profiles = _loaded(ws, names, load_profile)
    targets = targets_with_profiles(base, profiles)
    if not targets:
        return Outcome()
    model = str(data["candidate"]).partition("@")[0]
    deployed = {name: _live(ws, model, name) for name in names}
    message = check_message_for(data, deployed)
    return send(ws, message, targets)


def check_message_for(data: Mapping[str, Any], deployed: Mapping[str, str | None]) -> Message:
    """The message of a check report (``CheckReport.to_dict()``), with the command that
    reproduces it."""
    from devtrack.core.alert_messages import check_message

    names = [p["profile"] for p in data["profiles"]]
    baseline_given = next((p["baseline"] for p in data["profiles"]
                           if p.get("baseline_source") == "given"), None)
    extra = ["--no-rerun"] if not data.get("rerun", True) else []
    if data.get("inconclusive_policy") == "fail":
        extra += ["--inconclusive", "fail"]
    reproduce = check_command(str(data["candidate"]), names, baseline_given, extra)
    # A latency regression's top per-operator contributors (gate + explain), per profile.
    contributors = {str(p["profile"]): list(p.get("contributors") or [])
                    for p in data["profiles"] if p.get("contributors")}
    return check_message(data, reproduce, deployed, contributors or None, context_line())


def notify_bench(ws: Workspace, base: Plan, runs: Sequence[Mapping[str, Any]],
                 profiles: Sequence[Profile]) -> Outcome:
    """Notify about one ``bench`` command: failed runs and budget breaches of its runs."""
    used = {str(r["profile"]) for r in runs}
    chosen = [p for p in profiles if p.name in used]
    targets = targets_with_profiles(base, chosen)
    if not targets or not runs:
        return Outcome()
    by_name = {p.name: p for p in chosen}
    breaches = []
    for run in runs:
        profile = by_name.get(str(run["profile"]))
        if run.get("status") != "ok" or profile is None:
            continue
        figures = Figures(p90_ms=budget_latency_ms(run), peak_rss_mb=run.get("peak_rss_mb"),
                          accuracy=run.get("accuracy"))
        for result in evaluate_budgets(profile.budgets, figures):
            if result.status == FAIL:
                breaches.append((f"{run['model']}@{run['version']}", profile.name,
                                 result.message()))
    deployed = {(str(r["model"]), str(r["profile"])): _live(ws, str(r["model"]),
                                                             str(r["profile"])) for r in runs}
    refs = list(dict.fromkeys(f"{r['model']}@{r['version']}" for r in runs))
    words = ["devtrack", "bench", *refs]
    for name in sorted(used):
        words += ["--profile", name]
    message = bench_message(runs, breaches, command_line(*words), deployed, context_line())
    return send(ws, message, targets)


def notify_bisect(ws: Workspace, base: Plan, result: Any) -> Outcome:
    """Notify about one ``bisect`` (``result``: a ``bisecting.BisectResult``)."""
    from devtrack.profiles import load_profile

    data = result.to_dict()
    targets = targets_with_profiles(base, _loaded(ws, [data["profile"]], load_profile))
    if not targets:
        return Outcome()
    model = str(data["good"]).partition("@")[0]
    reproduce = command_line("devtrack", "bisect", model,
                             "--good", str(data["good"]).partition("@")[2],
                             "--bad", str(data["bad"]).partition("@")[2],
                             "--profile", data["profile"])
    message = bisect_message(data, reproduce, _live(ws, model, data["profile"]),
                             context_line())
    return send(ws, message, targets)


def notify_deployment(ws: Workspace, base: Plan, deployment: Any) -> Outcome:
    """Notify about one deploy or rollback (``deployment``: a ``lifecycle.Deployment``)."""
    from devtrack.profiles import load_profile

    data = deployment.to_dict()
    targets = targets_with_profiles(base, _loaded(ws, [data["profile"]], load_profile))
    if not targets:
        return Outcome()
    return send(ws, deployment_message(data, context_line()), targets)


def notify_deployment_in(root: Path, deployment: Any) -> list[str]:
    """For the app: notify about a deploy or rollback from a background thread, on a
    connection of its own; returns the warning lines to show (a bad config is one too)."""
    from devtrack.workspace import open_workspace

    try:
        with open_workspace(root) as ws:
            return notify_deployment(ws, plan(root, []), deployment).warnings
    except DevtrackError as exc:
        return [f"warning: notification not sent: {exc}"]


def send_test(root: Path | None, ws: Workspace | None, urls: Sequence[str]) -> Outcome:
    """``devtrack alerts test``: a sample message to ``urls``, else to every configured
    target (workspace config and the workspace's profiles); UsageError when there is none."""
    targets = list(plan(root, []).targets) if not urls else cli_targets(urls)
    if not urls:
        targets = targets_with_profiles(Plan(root, tuple(targets)), _workspace_profiles(root))
    if not targets:
        where = (f"{config_path(root)} or a profile's [alerts]" if root is not None
                 else "a workspace's .devtrack/config.toml")
        raise UsageError(f"no alert targets configured: give a URL (devtrack alerts test "
                         f"json://host/path) or set urls in {where}")
    every = [Target(t.url, ("all",), t.source, t.timeout_s) for t in targets]
    return send(ws, sample_message(context_line()), every)


def configured_targets(root: Path | None) -> list[Target]:
    """Every configured target: the workspace config's, then each valid profile's."""
    return targets_with_profiles(plan(root, []), _workspace_profiles(root))


def _workspace_profiles(root: Path | None) -> list[Profile]:
    from devtrack.profiles import list_profiles

    return [e.profile for e in list_profiles(root) if e.profile is not None]


def _loaded(ws: Workspace, names: Iterable[str], load: Any) -> list[Profile]:
    found = []
    for name in names:
        try:
            found.append(load(name, ws.root))
        except DevtrackError:  # the decision was made; a profile gone since has no targets
            continue
    return found


def _live(ws: Workspace, model: str, profile: str) -> str | None:
    from devtrack.lifecycle import current_deployment

    try:
        live = current_deployment(ws, model, profile)
    except DevtrackError:
        return None
    return live.ref if live else None
