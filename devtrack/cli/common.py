"""Shared CLI plumbing: the workspace option, JSON output, the console, literal text."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from devtrack.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(func: F) -> F:
    """``--workspace DIR``: use this workspace instead of searching from the current folder."""
    return click.option(
        "--workspace",
        "-w",
        "workspace_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Workspace folder (default: search upward from here, or $DEVTRACK_WORKSPACE).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(
        func
    )


def interruptible(func: F) -> F:
    """Run the command with SIGTERM and SIGHUP handled like Ctrl-C (devtrack.interrupts):
    the worker is stopped, the interrupted run stored as aborted, temp folders removed, and
    the exit code is 143 (SIGTERM), 129 (SIGHUP) or 130 (Ctrl-C). Put it right above def."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from devtrack.interrupts import signals_interrupt

        with signals_interrupt():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def open_ws(ctx: click.Context, workspace_dir: Path | None) -> Workspace:
    """Open the workspace chosen by the command's option, else the group's, else by search."""
    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    ws = open_workspace(chosen)
    ctx.call_on_close(ws.close)
    return ws


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def console() -> Console:
    """A console for stdout; Rich decides on colour and width from the terminal."""
    from rich.console import Console

    # emoji=False: a note saying ":fire:" must print as typed, like "[red]" does.
    return Console(highlight=False, soft_wrap=False, emoji=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, emoji=False)


def check_profile_name(ws: Workspace, name: str | None) -> None:
    """A --profile filter that matched nothing: fail on a name no profile file has (with the
    did-you-mean of ``load_profile``) rather than print an empty result for a typo."""
    if name is not None:
        from devtrack.profiles import load_profile

        load_profile(name, ws.root)


def resolve_deployed(ws: Workspace, text: str, profiles: tuple[str, ...] | list[str]) -> str:
    """``MODEL@deployed`` → ``MODEL@VERSION`` live on the one ``--profile`` given; any other
    reference is returned as it is (the library parses and checks it)."""
    from devtrack.core.refs import parse_ref
    from devtrack.errors import UsageError

    ref = parse_ref(text)
    if ref.version != "deployed":
        return text
    names = list(dict.fromkeys(profiles))
    if len(names) != 1:
        raise UsageError(f"{ref} depends on the profile: give exactly one --profile "
                         f"(or name the version; 'devtrack history {ref.model}' shows what "
                         "is live where)")
    from devtrack.lifecycle import deployed_release

    return deployed_release(ws, ref.model, names[0]).ref
