"""Lifecycle commands: promote, notes, deploy, history, rollback and audit verify."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from devtrack import lifecycle
from devtrack.cli.alert_cmds import notify_decision, notify_option, notify_plan
from devtrack.cli.common import (
    check_profile_name,
    console,
    echo_json,
    json_option,
    open_ws,
    workspace_option,
)
from devtrack.cli.plain import short_time
from devtrack.cli.render import literal
from devtrack.core.refs import check_model_name, parse_ref
from devtrack.core.rollback import RollbackPlan, budget_figure
from devtrack.errors import UsageError
from devtrack.lifecycle import Deployment, NoRollbackTarget, NothingDeployed

if TYPE_CHECKING:
    from devtrack.artifact_audit import StoreReport
    from devtrack.investigations import Investigation

_REASON_HELP = "Why (recorded in the audit trail)."


@click.command()
@click.argument("ref", metavar="MODEL@VERSION")
@click.option("--to", "to", required=True, type=click.Choice(["approved", "rejected", "yanked"]),
              help="The new status.")
@click.option("--reason", required=True, help=_REASON_HELP)
@workspace_option
@json_option
@click.pass_context
def promote(ctx: click.Context, ref: str, to: str, reason: str, workspace_dir: Path | None,
            as_json: bool) -> None:
    """Change a release's status: approve, reject or yank it, with a reason.

    A candidate can become approved, rejected or yanked; an approved release rejected or
    yanked; a rejected one approved again or yanked. A yank is final. Approving rehashes the
    stored artifact and refuses a missing or modified one (rejecting or yanking does not).

    Example: devtrack promote kws@1.2.0 --to approved --reason "passes on all profiles"
    """
    ws = open_ws(ctx, workspace_dir)
    result = lifecycle.promote(ws, parse_ref(ref), to, reason)
    if as_json:
        echo_json(result.to_dict())
        return
    out = console()
    out.print(literal(f"{result.release}: {result.previous} → {result.status}"))
    for profile in result.still_deployed_on:
        model = result.release.partition("@")[0]
        out.print(literal(f"  warning: still deployed on {profile}; roll it back: devtrack "
                          f"rollback {model} --profile {profile} --reason TEXT"),
                  style="yellow")


@click.command()
@click.argument("ref", metavar="MODEL@VERSION")
@click.option("--set", "text", help="The new release notes.")
@click.option("--file", "notes_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the new release notes from a file.")
@click.option("--reason", help=_REASON_HELP)
@workspace_option
@json_option
@click.pass_context
def notes(ctx: click.Context, ref: str, text: str | None, notes_file: Path | None,
          reason: str | None, workspace_dir: Path | None, as_json: bool) -> None:
    """Replace a release's notes (a deployment needs them); the old text stays in the log.

    Example: devtrack notes kws@1.2.0 --set "int8 quantized; 2x faster on phone-4t"
    """
    if (text is None) == (notes_file is None):
        raise UsageError("give the notes with --set TEXT or --file PATH (one of them)")
    if notes_file is not None:
        from devtrack.configfile import read_text_file

        text = read_text_file(notes_file, "notes file")
    ws = open_ws(ctx, workspace_dir)
    release = lifecycle.set_notes(ws, parse_ref(ref), text or "", reason)
    if as_json:
        echo_json({"release": release.ref, "notes": release.notes})
    else:
        console().print(literal(f"Updated the notes of {release.ref}"))


@click.command()
@click.argument("ref", metavar="MODEL@VERSION")
@click.option("--profile", "-p", "profile_name", required=True,
              help="Device profile to deploy on.")
@click.option("--reason", required=True, help=_REASON_HELP)
@click.option("--force", is_flag=True,
              help="Deploy without a passing check on the profile (recorded as an override); "
                   "never deploys an artifact that is missing or modified.")
@notify_option
@workspace_option
@json_option
@click.pass_context
def deploy(ctx: click.Context, ref: str, profile_name: str, reason: str, force: bool,
           notify_urls: tuple[str, ...], workspace_dir: Path | None, as_json: bool) -> None:
    """Make a release the live one on a device profile.

    Needs release notes and a passing 'devtrack check' of the release on that profile under
    its current settings; --force deploys without the check and records the override.
    Rejected and yanked releases cannot be deployed, nor (even with --force) a release whose
    stored artifact is missing or no longer hashes to what was registered (exit 2).

    \b
    Examples:
      devtrack deploy kws@1.2.0 --profile phone-4t --reason "faster, same accuracy"
      devtrack deploy kws@1.2.0 -p phone-4t --reason "rollout" --notify "$SLACK_URL"
    """
    alerts = notify_plan(ctx, workspace_dir, notify_urls)
    ws = open_ws(ctx, workspace_dir)
    release = lifecycle.resolve_release(ws, parse_ref(ref), profile_name)
    d = lifecycle.deploy(ws, release, profile_name, reason, force=force)
    from devtrack.notify import notify_deployment

    notify_decision(lambda: notify_deployment(ws, alerts, d))
    if as_json:
        echo_json(d.to_dict())
        return
    out = console()
    replaced = f" (replaces {d.model}@{d.replaced})" if d.replaced else ""
    out.print(literal(f"Deployed {d.ref} on {d.profile}{replaced}"))
    if d.forced:
        out.print(literal("  forced: deployed without a passing check; the override is "
                          "recorded"), style="yellow")
    else:
        out.print(literal(f"  check #{d.check_id} passed"))


def history_view(deployments: list[Deployment], title: str) -> Group:
    """One entry per deployment, oldest first: when it was live, where, what and who on one
    line (fits 80 columns), then the reason — and what it replaced — indented below.

    A list rather than a table, so a long reason or version never squeezes the rest.
    """
    parts: list[RenderableType] = [Text(title, style="bold")]
    for d in deployments:
        since = short_time(d.deployed_at)
        head = Text(f"{since} → ")
        if d.live:
            head.append("live", style="green bold")
        else:
            until = short_time(d.ended_at or "")
            head.append(until[11:] if until[:10] == since[:10] else until, style="dim")
        head.append("  ")
        head.append_text(literal(d.profile))
        head.append("  ")
        head.append("forced deploy" if d.forced else d.kind,
                    style="yellow bold" if d.forced else "bold")
        head.append(" ")
        head.append_text(literal(d.version))  # the title names the model
        head.append_text(literal(f"  by {d.deployed_by}"))
        why = literal(d.reason)
        if d.replaced:
            why.append_text(literal(f" (replaced {d.replaced})"))
        parts += [head, Padding(why, (0, 0, 0, 4), expand=False)]
    return Group(*parts)


@click.command()
@click.argument("model")
@click.option("--profile", "-p", "profile_name", help="Only deployments on this profile.")
@workspace_option
@json_option
@click.pass_context
def history(ctx: click.Context, model: str, profile_name: str | None,
            workspace_dir: Path | None, as_json: bool) -> None:
    """Show who deployed what, where, when and why, and what it replaced.

    Then the explains and bisects recorded for the line, one answer each (--json lists
    the deployments only; `devtrack log MODEL --kind bisect --json` has those).

    Example: devtrack history kws --profile phone-4t
    """
    from devtrack.investigations import investigations

    check_model_name(model)
    ws = open_ws(ctx, workspace_dir)
    rows = lifecycle.history(ws, model, profile_name)
    if not rows:
        check_profile_name(ws, profile_name)
    where = f" on {profile_name}" if profile_name else ""
    if as_json:
        echo_json([d.to_dict() for d in rows])
        return
    if not rows:
        console().print(literal(f"{model} was never deployed{where}. Deploy a release: "
                                f"devtrack deploy {model}@VERSION --profile NAME --reason TEXT"))
    else:
        console().print(history_view(rows, f"Deployments of {model}{where}"))
    found = [i for i in investigations(ws, model)
             if profile_name is None or i.profile == profile_name]
    if found:
        console().print(investigations_view(found, f"Explains and bisects of {model}{where}"))


def investigations_view(found: list[Investigation], title: str) -> Group:
    """One line per recorded explain or bisect, oldest first: when, who, the answer."""
    parts: list[RenderableType] = [Text(""), Text(title, style="bold")]
    for item in found:
        head = Text(f"{short_time(item.ts)}  ")
        head.append(item.kind, style="bold")
        head.append_text(literal(f"  by {item.actor}  (event {item.event_id})"))
        parts += [head, Padding(literal(item.summary), (0, 0, 0, 4), expand=False)]
    return Group(*parts)


def plan_table(plan: RollbackPlan) -> Table:
    table = Table(title="Releases considered, in order of preference", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("release", overflow="fold")
    table.add_column("status")
    table.add_column("why", overflow="fold", ratio=1)
    for number, a in enumerate(plan.ranked, start=1):
        if a.chosen:
            why = Text("chosen", style="green bold")
            if a.budgets:
                why.append(": " + ", ".join(budget_figure(b) for b in a.budgets))
        else:
            why = literal("; ".join(a.reasons))
        table.add_row(str(number), literal(a.version), a.status, why)
    return table


@click.command()
@click.argument("model")
@click.option("--profile", "-p", "profile_name", required=True,
              help="Device profile to roll back on.")
@click.option("--reason", help=_REASON_HELP + " Required unless --dry-run.")
@click.option("--to", "to", metavar="VERSION", help="Roll back to this release (if it qualifies).")
@click.option("--dry-run", is_flag=True, help="Show the proposal; change nothing.")
@notify_option
@workspace_option
@json_option
@click.pass_context
def rollback(ctx: click.Context, model: str, profile_name: str, reason: str | None,
             to: str | None, dry_run: bool, notify_urls: tuple[str, ...],
             workspace_dir: Path | None, as_json: bool) -> None:
    """Go back to an earlier release on a profile, and say why the others were passed over.

    The target is the most recent release before the current deployment that was approved
    or deployed before, is not rejected or yanked, has a run that counts on the profile (the
    newest ok run under its current conditions), and passes the profile's budgets. Exit 1
    when none qualifies; exit 2 when the target's stored artifact is missing or modified.

    \b
    Examples:
      devtrack rollback kws --profile phone-4t --dry-run
      devtrack rollback kws --profile phone-4t --reason "crash reports on 1.3.0"
    """
    check_model_name(model)
    alerts = notify_plan(ctx, workspace_dir, notify_urls)
    ws = open_ws(ctx, workspace_dir)
    try:
        result = lifecycle.rollback(ws, model, profile_name, reason, to=to, dry_run=dry_run)
    except NothingDeployed as exc:
        if as_json:  # scripts read the same shape as a plan, with nothing current
            echo_json({"profile": profile_name, "current": None, "target": None,
                       "requested": to, "refusal": str(exc), "ranked": [],
                       "dry_run": dry_run, "deployment": None})
        raise
    except NoRollbackTarget as exc:
        if as_json:
            echo_json({**exc.plan.to_dict(), "dry_run": dry_run, "deployment": None})
        else:
            out = console()
            out.print(literal(f"Rollback of {model} on {exc.plan.profile} from "
                              f"{exc.plan.current}: no release qualifies"))
            out.print(plan_table(exc.plan))
            for note in exc.plan.notes:
                out.print(literal(f"note: {note}"), style="yellow")
        raise
    if result.deployment is not None:
        from devtrack.notify import notify_deployment

        deployment = result.deployment
        notify_decision(lambda: notify_deployment(ws, alerts, deployment))
    if as_json:
        echo_json(result.to_dict())
        return
    out = console()
    plan = result.plan
    head = literal(f"Rollback of {model} on {plan.profile}: {plan.current} → {plan.target}")
    if result.deployment is None:
        head.append("  (dry run: nothing was changed)", style="yellow")
    out.print(head)
    out.print(plan_table(plan))
    for note in plan.notes:
        out.print(literal(f"note: {note}"), style="yellow")
    if result.deployment is not None:
        out.print(literal(f"Deployed {result.deployment.ref} on {plan.profile} "
                          f"(replaces {model}@{plan.current})"))


@click.group()
def audit() -> None:
    """Check the audit trail.

    Example: devtrack audit verify
    """


@audit.command()
@click.option("--quick", is_flag=True,
              help="Do not read the stored files: only check each is there with its "
                   "registered size (an edit that keeps the size goes unnoticed).")
@click.option("--deep", is_flag=True,
              help="With DEVTRACK_ARTIFACTS_URL: read every object's bytes and hash them "
                   "(default there: sizes only).")
@workspace_option
@json_option
@click.pass_context
def verify(ctx: click.Context, quick: bool, deep: bool, workspace_dir: Path | None,
           as_json: bool) -> int:
    """Check the audit trail, the tables against it and the stored files; exit 1 if broken.

    The chain names the first altered or removed event. When it holds, releases, runs,
    evaluations, checks, comparisons, deployments, datasets and model lines are compared with
    the events that recorded them: a row edited, added or removed by hand is named.
    Every artifact and dataset file the tables reference is rehashed too (bytes read and
    time are printed): a missing or altered file is named with the releases or dataset using it.
    Files in the store that no row references, and leftovers of interrupted writes
    (.incoming-*), are listed as notes: they change no record, so they do not fail.
    With DEVTRACK_ARTIFACTS_URL (object storage) each object's size is checked, and its
    bytes with --deep.

    \b
    Examples:
      devtrack audit verify
      devtrack audit verify --quick --json
      DEVTRACK_ARTIFACTS_URL=s3://models/team devtrack audit verify --deep
    """
    from devtrack.auditing import verify_audit

    ws = open_ws(ctx, workspace_dir)
    progress = None if as_json or quick else TerminalProgress()
    try:
        result = verify_audit(ws, quick=quick, progress=progress, deep=deep)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        echo_json(result.to_dict())
    elif result.problem is None and not result.state:
        click.echo(f"Audit trail intact: {result.events} events, hash chain verified; "
                   "every table agrees with it.")
    if not as_json and result.files is not None:
        for line in files_lines(result.files):
            click.echo(line)
    if result.problem is not None:
        click.echo(f"error: audit trail broken: {result.problem.message}", err=True)
    problems = [p.message if p.message.startswith(f"table {p.table} ")  # dropped or unreadable
                else f"{p.table} disagree with the audit trail: {p.message}"
                for p in result.state]
    if result.files is not None:
        problems += [p.message for p in result.files.problems]
    for message in problems[:STATE_PROBLEMS_SHOWN]:
        click.echo(f"error: {message}", err=True)
    if len(problems) > STATE_PROBLEMS_SHOWN:
        click.echo(f"error: … and {len(problems) - STATE_PROBLEMS_SHOWN} more "
                   "(--json lists them all)", err=True)
    return 0 if result.ok else 1


def files_lines(report: StoreReport) -> list[str]:
    """What verify says about the stored files: what was read, then the notes."""
    from devtrack.core.units import format_size as human_bytes

    noun = f"{report.files} stored file{'s' if report.files != 1 else ''}"
    if report.remote is not None:
        objects = f"{report.files} object{'s' if report.files != 1 else ''} in {report.remote}"
        state = "all intact" if report.ok else f"{len(report.problems)} altered or missing"
        if report.deep:
            return [f"Files: {objects} rehashed, {human_bytes(report.bytes_read)} read in "
                    f"{report.seconds:.2f} s; {state}."]
        return [f"Files: {objects} present with their registered sizes; {state} (bytes not "
                "read: --deep reads them)."]
    if report.quick:
        lines = [f"Files: {noun} present with their registered sizes; bytes not read "
                 "(--quick: an edit that keeps a file's size is not detected)."]
    else:
        state = "all intact" if report.ok else f"{len(report.problems)} altered or missing"
        lines = [f"Files: {noun} rehashed, {human_bytes(report.bytes_read)} read in "
                 f"{report.seconds:.2f} s; {state}."]
    for label, strays in (("not referenced by any row", report.unreferenced),
                          ("left by an interrupted write", report.leftovers)):
        if strays:
            size = human_bytes(sum(s.size_bytes for s in strays))
            shown = ", ".join(s.path for s in strays[:3])
            more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
            lines.append(f"note: {len(strays)} file{'s' if len(strays) != 1 else ''} in the "
                         f"store {label} ({size}): {shown}{more}; not part of any record")
    return lines


class TerminalProgress:
    """A one-line progress on stderr while files are hashed (only on a terminal, and only
    once hashing has taken a moment)."""

    DELAY_S = 0.5

    def __init__(self, label: str = "rehashing stored files") -> None:
        import time

        self._label = label
        self._clock = time.monotonic
        self._started = self._clock()
        self._shown = 0.0
        self._drawn = False
        self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if not self._tty or now - self._started < self.DELAY_S or now - self._shown < 0.2:
            return
        from devtrack.core.units import format_size as human_bytes

        self._shown = now
        self._drawn = True
        share = done / total * 100 if total else 100.0
        sys.stderr.write(f"\r{self._label}: {human_bytes(done)} of "
                         f"{human_bytes(total)} ({share:.0f}%) ")
        sys.stderr.flush()

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


STATE_PROBLEMS_SHOWN = 20


COMMANDS: list[click.Command] = [promote, notes, deploy, history, rollback, audit]
