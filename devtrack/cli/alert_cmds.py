"""Alerts on the command line: the ``--notify`` option, its warnings, and ``devtrack alerts``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from devtrack.cli.common import echo_json, json_option, workspace_option

if TYPE_CHECKING:
    from devtrack.notify import Outcome, Plan
    from devtrack.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def notify_option(func: F) -> F:
    """``--notify URL`` (repeatable): also send this decision to an Apprise URL."""
    return click.option(
        "--notify", "notify_urls", multiple=True, metavar="URL",
        help="Also notify this Apprise URL (slack://…, mailto://…, json://host/path) when "
             "something significant happens; repeatable. Added to the [alerts] of the "
             "workspace config and the profiles. Delivery never changes the exit code.")(func)


def notify_plan(ctx: click.Context, workspace_dir: Path | None,
                urls: tuple[str, ...]) -> Plan:
    """Check ``--notify`` and the workspace's ``[alerts]`` before any work (exit 2 on a bad
    URL or ``on`` value)."""
    from devtrack.notify import plan
    from devtrack.workspace import find_workspace_root

    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    return plan(find_workspace_root(chosen), urls)


def report_outcome(outcome: Outcome) -> None:
    """One warning line on stderr per target that did not get the message."""
    for line in outcome.warnings:
        click.echo(line, err=True)


def notify_decision(send: Callable[[], Outcome]) -> None:
    """Send after a decision is final: nothing here may change the command's result."""
    from devtrack.errors import DevtrackError

    try:
        outcome = send()
    except DevtrackError as exc:  # e.g. the database busy while reading what is deployed
        click.echo(f"warning: notification not sent: {exc}", err=True)
        return
    except Exception as exc:  # a bug in alerting must not change the decision's exit code
        click.echo(f"warning: notification not sent: {type(exc).__name__}: {exc} (a bug in "
                   "devtrack's alerts; please report it)", err=True)
        return
    report_outcome(outcome)


@click.group()
def alerts() -> None:
    """Alerts: where devtrack sends notifications, and a test message to check the setup.

    Targets are Apprise URLs from --notify, the [alerts] table of .devtrack/config.toml and
    the [alerts] table of each device profile.

    \b
    Examples:
      devtrack alerts test json://127.0.0.1:8080/hook
      devtrack alerts list
    """


@alerts.command("test")
@click.argument("urls", nargs=-1, metavar="[URL]...")
@workspace_option
@json_option
@click.pass_context
def alerts_test(ctx: click.Context, urls: tuple[str, ...], workspace_dir: Path | None,
                as_json: bool) -> int:
    """Send a sample message to URL, or to every configured target when none is given.

    Exit 0 when every target got it, 1 when one did not (each failure is one line on
    stderr), 2 when no target is configured or a URL is malformed. The attempt is recorded
    in the audit trail (targets masked) when there is a workspace.

    \b
    Examples:
      devtrack alerts test
      devtrack alerts test "slack://TokenA/TokenB/TokenC/#ml-releases"
      devtrack alerts test json://127.0.0.1:8080/hook --json
    """
    from devtrack.errors import WorkspaceError
    from devtrack.notify import cli_targets, send_test

    cli_targets(urls)  # a malformed URL fails before anything else
    ws: Workspace | None = None
    root = None
    try:
        ws = _open(ctx, workspace_dir)
        root = ws.root
    except WorkspaceError:
        if not urls:
            raise
    outcome = send_test(root, ws, urls)
    if as_json:
        echo_json({"title": outcome.message.title if outcome.message else None,
                   "attempts": [a.to_dict() for a in outcome.attempts]})
    else:
        for attempt in outcome.attempts:
            state = "delivered" if attempt.delivered else "NOT delivered"
            click.echo(f"{attempt.target}: {state} ({attempt.seconds:.2f} s)")
    report_outcome(outcome)
    return 0 if all(a.delivered for a in outcome.attempts) else 1


@alerts.command("list")
@workspace_option
@json_option
@click.pass_context
def alerts_list(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> None:
    """List the configured alert targets (secrets masked), what each is sent, and from where.

    \b
    Example:
      devtrack alerts list --json
    """
    from devtrack.notify import configured_targets
    from devtrack.workspace import find_workspace_root

    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    targets = configured_targets(find_workspace_root(chosen))
    if as_json:
        echo_json([t.to_dict() for t in targets])
        return
    if not targets:
        click.echo("No alert targets configured: set [alerts] urls in .devtrack/config.toml "
                   "or a device profile, or pass --notify URL.")
    for t in targets:
        click.echo(f"{t.masked}  on: {', '.join(t.on)}  from: {t.source}  "
                   f"timeout: {t.timeout_s:g} s")


def _open(ctx: click.Context, workspace_dir: Path | None) -> Workspace:
    from devtrack.cli.common import open_ws

    return open_ws(ctx, workspace_dir)


COMMANDS = [alerts]
