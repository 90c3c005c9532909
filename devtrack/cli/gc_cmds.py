"""``devtrack gc``: remove leftovers of interrupted writes that no live process owns."""

from __future__ import annotations

from pathlib import Path

import click

from devtrack.cli.common import echo_json, json_option, open_ws, workspace_option

_KIND_NAMES = {"partial_copy": "partial copies in the store",
               "unreferenced_file": "stored files no release or dataset references",
               "run_folder": "bench temp folders"}


def _human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@workspace_option
@json_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, workspace_dir: Path | None, as_json: bool) -> None:
    """Remove leftovers of interrupted writes that no live devtrack process owns.

    A register, dataset add or bench killed half-way (kill -9, a crash, a power cut) can
    leave partial copies (.incoming-*) and files no release references in the store, and
    devtrack-run-* folders in the temp folder. Safe while other devtrack processes run:
    what a live process is writing is left alone (and listed as in use).

    \b
    Examples:
      devtrack gc --dry-run
      devtrack gc --json
    """
    from devtrack.garbage import collect_garbage

    ws = open_ws(ctx, workspace_dir)
    result = collect_garbage(ws, dry_run=dry_run)
    if as_json:
        echo_json(result.to_dict())
        return
    verb = "Would remove" if dry_run else "Removed"
    if not result.removed:
        click.echo("Nothing to remove: no leftovers of interrupted writes.")
    else:
        click.echo(f"{verb} {len(result.removed)} leftovers: {result.files} files, "
                   f"{_human_bytes(result.size_bytes)}"
                   f"{' would be freed' if dry_run else ' freed'}.")
        for item in result.removed:
            click.echo(f"  {_KIND_NAMES.get(item.kind, item.kind)}: {item.path} "
                       f"({_human_bytes(item.size_bytes)})")
    if result.in_use:
        click.echo(f"Left {len(result.in_use)} in place: a running devtrack holds them, or an "
                   "older devtrack made them less than an hour ago (--json lists them).")
