"""lab, lab check: the device profiles, whether each device answers and is ready, who holds it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from devtrack.cli.common import echo_json, json_option, workspace_option
from devtrack.core.text import printable

if TYPE_CHECKING:
    from devtrack.lab import DeviceReport


def _root(ctx: click.Context, workspace_dir: Path | None) -> Path | None:
    from devtrack.errors import WorkspaceError
    from devtrack.workspace import find_workspace_root

    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    try:
        return find_workspace_root(chosen)
    except WorkspaceError:
        if chosen is not None:
            raise
        return None  # outside a workspace: the shipped profiles only


def _holder_text(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "free"
    what = f" ({holder['what']})" if holder.get("what") else ""
    return printable(f"held by {holder.get('holder', '?')} pid {holder.get('pid', '?')} since "
                     f"{holder.get('since', '?')}{what}")


def _reachable_text(report: DeviceReport) -> str:
    if report.target == "local":
        return "this host"
    if report.reachable is None:
        return "-"
    return "yes" if report.reachable else "no"


@click.group(invoke_without_command=True)
@workspace_option
@json_option
@click.pass_context
def lab(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> None:
    """The device lab: profiles with their targets, whether each device answers, who holds
    it; 'lab check' says what a device lacks.

    A measurement holds a device's lock for its whole run. SSH devices are probed in
    parallel, each within its profile's ssh.connect_timeout_s.

    \b
    Examples:
      devtrack lab
      devtrack lab --json
      devtrack lab check pi4 jetson-orin
    """
    if ctx.invoked_subcommand is not None:
        return
    from devtrack.lab import lab_overview

    reports = lab_overview(_root(ctx, workspace_dir))
    if as_json:
        echo_json([r.to_dict() for r in reports])
        return
    from rich.table import Table

    from devtrack.cli.common import console
    from devtrack.cli.render import literal

    table = Table(title="Device lab", title_justify="left")
    for column in ("profile", "target", "reachable", "held", "note"):
        table.add_column(column, no_wrap=column in ("profile", "target"),
                         ratio=1 if column == "note" else None)
    for r in reports:
        lockable = r.reachable and r.target.startswith(("ssh://", "adb://"))  # a device lock
        held = _holder_text(r.holder) if lockable else "-"
        note = r.error or ("; ".join(r.problems) if r.problems else "")
        table.add_row(literal(r.profile), literal(r.target), _reachable_text(r), literal(held),
                      literal(note), style="red" if r.error or r.problems else None)
    console().print(table)


@lab.command("check")
@click.argument("profile_names", nargs=-1, required=True, metavar="PROFILE...")
@workspace_option
@json_option
@click.pass_context
def check(ctx: click.Context, profile_names: tuple[str, ...], workspace_dir: Path | None,
          as_json: bool) -> None:
    """Connect to each profile's device and report what it is and what it lacks.

    Exit 0 when every device can measure its profile's formats (an SSH board: Python >= 3.10,
    numpy, and onnxruntime and/or LiteRT importable by the profile's ssh.python; an adb
    phone: the adb client, the phone authorised, benchmark_model executable, taskset when
    cores are pinned), 1 naming what is missing or why a device cannot be reached (ssh's or
    adb's own message), 2 for an unknown profile. A local profile is checked against this
    host's Python.

    Example: devtrack lab check pi4 --json
    """
    from devtrack.errors import DeviceError
    from devtrack.lab import check_devices
    from devtrack.profiles import load_profile

    root = _root(ctx, workspace_dir)
    profiles = [load_profile(name, root) for name in dict.fromkeys(profile_names)]
    reports = check_devices(profiles)
    if as_json:
        echo_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            _print_report(r)
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise DeviceError("; ".join(problems))


def _print_report(r: DeviceReport) -> None:
    state = "ready" if r.ready else "NOT READY"
    click.echo(printable(f"{r.profile} ({r.target}): {state}"))
    if r.reachable and r.target.startswith("adb://"):  # a phone: benchmark_model, no Python
        i = r.info
        phone = " ".join(str(i[k]) for k in ("manufacturer", "model") if i.get(k)) or "phone"
        click.echo(printable(f"  {phone}, Android {i.get('android') or '?'}, "
                             f"{i.get('abi') or '?'}; benchmark_model at "
                             f"{i.get('benchmark_model')}; {_holder_text(r.holder)}"))
    elif r.reachable:
        i, v = r.info, r.versions
        click.echo(printable(
            f"  host {i.get('host')}: {i.get('cpu_model')}, {i.get('logical_cores')} cores, "
            f"{i.get('machine')}, kernel {i.get('kernel')}"))
        click.echo(printable(f"  Python {i.get('python_version')} at {i.get('python')}; "
                             f"numpy {v.get('numpy') or '-'}, onnxruntime "
                             f"{v.get('onnxruntime') or '-'}, LiteRT {v.get('litert') or '-'}"))
        click.echo(printable(f"  workdir {i.get('workdir')}; {_holder_text(r.holder)}"))
    for problem in r.problems:
        click.echo(printable(f"  missing: {problem}" if r.reachable else f"  {problem}"))
