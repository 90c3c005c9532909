"""info: where the workspace's database and artifacts are, and which versions."""

from __future__ import annotations

from pathlib import Path

import click

from devtrack.cli.common import echo_json, json_option, open_ws, workspace_option


@click.command()
@workspace_option
@json_option
@click.pass_context
def info(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> None:
    """Show where the database and the artifacts of this workspace are (passwords masked),
    the database's schema version and devtrack's version.

    It connects to the database as every command does, so a wrong URL, an unreachable
    server, refused credentials or a database that is not devtrack's show up here (exit 2).

    Examples: devtrack info
              DEVTRACK_DATABASE_URL=postgresql://ci@db.internal/devtrack devtrack info --json
    """
    from devtrack.workspace_info import describe

    found = describe(open_ws(ctx, workspace_dir))
    if as_json:
        echo_json(found.to_dict())
        return
    backend = "PostgreSQL" if found.backend == "postgresql" else "SQLite"
    lines = [
        ("workspace", found.workspace),
        ("database", f"{found.database} ({backend}, schema {found.schema_version}; "
                     f"from {found.database_from})"),
        ("artifacts", f"{found.artifacts} ({found.artifacts_kind}; from "
                      f"{found.artifacts_from})"),
        ("devtrack", found.devtrack_version),
    ]
    for label, value in lines:
        click.echo(f"{label:<10} {value}")
