"""The ``tui`` command: open the release-review app (``devtrack`` alone does the same)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from devtrack.cli.common import workspace_option
from devtrack.errors import UsageError, WorkspaceError
from devtrack.workspace import find_workspace_root


def on_terminal() -> bool:
    """Whether both stdin and stdout are a terminal (the app needs both)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def open_app_or_help(ctx: click.Context, workspace_dir: Path | None) -> None:
    """``devtrack`` with no command: the app on a terminal, the usage text otherwise."""
    if on_terminal():
        launch(ctx, workspace_dir, help_without_workspace=True)
    else:
        click.echo(ctx.get_help())


def launch(ctx: click.Context, workspace_dir: Path | None, model: str | None = None,
           profile: str | None = None, help_without_workspace: bool = False) -> None:
    """Find the workspace first (a clear error, no Textual import), then run the app.

    With ``help_without_workspace`` (plain ``devtrack`` outside a workspace) the usage is
    printed instead of an error, with a line on how to create a workspace.
    """
    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    try:
        root = find_workspace_root(chosen)
    except WorkspaceError as exc:
        if not help_without_workspace or chosen is not None:
            raise
        click.echo(ctx.get_help())
        click.echo(f"\n(The review app opens inside a workspace: {exc}.)")
        return
    if model is not None or profile is not None:  # a typo is a one-line error, not a surprise
        from devtrack.profiles import load_profile
        from devtrack.registry import require_model
        from devtrack.workspace import open_workspace

        with open_workspace(root) as ws:
            if model is not None:
                require_model(ws, model)
        if profile is not None:
            load_profile(profile, root)
    from devtrack.tui.app import run_app  # Textual is imported only from here on

    run_app(root, model=model, profile=profile)


@click.command()
@click.option("--model", "-m", help="Model line to show first.")
@click.option("--profile", "-p", help="Device profile to show first.")
@workspace_option
@click.pass_context
def tui(ctx: click.Context, model: str | None, profile: str | None,
        workspace_dir: Path | None) -> None:
    """Open the release-review app (also what devtrack alone does).

    Releases, release detail, compare, trends, audit log, and the review actions.
    Keyboard-first: / filters, enter opens, esc goes back, ? lists every key, ctrl+p opens
    the command palette, q quits. Running devtrack with no command does the same.

    Example: devtrack tui --model hand-landmark --profile ci-host
    """
    if not on_terminal():
        raise UsageError("devtrack tui needs a terminal; for scripts use 'devtrack releases', "
                         "'devtrack show' and the other commands (with --json)")
    launch(ctx, workspace_dir, model, profile)


COMMANDS = [tui]
