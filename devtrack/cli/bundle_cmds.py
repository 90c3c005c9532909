"""export and import: carry releases and their runs between workspaces as a zip bundle."""

from __future__ import annotations

from pathlib import Path

import click

from devtrack.cli.common import echo_json, json_option, open_ws, workspace_option


@click.command()
@click.argument("refs", nargs=-1, metavar="REF...")
@click.option("--output", "-o", "output", required=True, type=click.Path(path_type=Path),
              help="The .zip to write (replaced atomically when it exists).")
@workspace_option
@json_option
@click.pass_context
def export(ctx: click.Context, refs: tuple[str, ...], output: Path,
           workspace_dir: Path | None, as_json: bool) -> None:
    """Write releases with their runs, evaluations and provenance to a bundle (.zip)
    another workspace can import.

    REF is MODEL@VERSION, MODEL@latest, or MODEL (all of its releases). The bundle holds
    each release's file and provenance, every run with every sample, evaluations and their
    datasets; parents and fidelity references travel too (without their runs). Statuses,
    deployments and checks are this workspace's decisions and stay here.

    \b
    Examples:
      devtrack export kws@1.1.0 -o kws-1.1.0.zip
      devtrack export kws detector@latest -o lab-results.zip --json
    """
    from devtrack.bundles import export_bundle

    ws = open_ws(ctx, workspace_dir)
    result = export_bundle(ws, list(refs), output)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"Wrote {output}: {len(result.releases)} releases, {result.runs} runs, "
               f"{len(result.datasets)} datasets ({result.size_bytes:,} bytes); bundle "
               f"sha256 {result.digest[:12]}")
    click.echo(f"Next, in the other workspace: devtrack import {output.name}")


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--max-size", "max_size", metavar="SIZE", default=None,
              help="Largest total size of the bundle's members, read from its manifest and "
                   "zip directory before anything is unpacked (default 64GiB).")
@workspace_option
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, max_size: str | None,
               workspace_dir: Path | None, as_json: bool) -> None:
    """Add a bundle made by 'devtrack export' to this workspace, verified and idempotent.

    Every member is checked against the bundle's manifest of sha256s before anything is
    written; then what the workspace lacks is added in one transaction, sealed by one
    'import' event naming the bundle's digest and the host it came from. Importing the same
    bundle again adds nothing. Refused (exit 2, nothing written): a member path that
    escapes or is a symlink, a hash mismatch, a truncated zip, a bundle from a newer
    devtrack, a release that is other bytes here under the same MODEL@VERSION.

    \b
    Examples:
      devtrack import lab-results.zip
      devtrack import lab-results.zip --json -w ~/team-ws
    """
    from devtrack.bundles import import_bundle
    from devtrack.cli.lifecycle_cmds import TerminalProgress
    from devtrack.core.units import parse_size

    max_bytes = parse_size(max_size, "--max-size") if max_size is not None else None
    ws = open_ws(ctx, workspace_dir)
    progress = None if as_json else TerminalProgress("verifying bundle")
    try:
        result = import_bundle(ws, file, max_bytes, progress)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        echo_json(result.to_dict())
        return
    if result.event_id is None:
        click.echo(f"Nothing to add: this workspace already holds everything in {file.name} "
                   f"(bundle sha256 {result.digest[:12]}, from {result.from_host}).")
        return
    click.echo(f"Imported {file.name} from {result.from_host} (bundle sha256 "
               f"{result.digest[:12]}), audit event {result.event_id}:")
    click.echo(f"  releases: {len(result.releases_added)} added"
               f"{', ' + ', '.join(result.releases_added) if result.releases_added else ''}; "
               f"{len(result.releases_present)} already here")
    click.echo(f"  runs: {result.runs_added} added, {result.runs_present} already here")
    if result.datasets_added:
        click.echo(f"  datasets added: {', '.join(result.datasets_added)}")
