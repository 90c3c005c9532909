"""db copy: a SQLite workspace's database copied into an empty PostgreSQL database."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from devtrack.cli.common import echo_json, json_option, open_ws, workspace_option


@click.group()
def db() -> None:
    """The workspace's database: copy it to a PostgreSQL server.

    Example: devtrack db copy --to postgresql://ci@db.internal:5432/devtrack
    """


class CopyProgressLines:
    """Progress on stderr, one line at a time (terminals and CI logs alike), only for a copy
    that has taken a moment: at most one line per interval."""

    DELAY_S = 0.5
    INTERVAL_S = 1.0

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._started < self.DELAY_S or now - self._shown < self.INTERVAL_S:
            return
        self._shown = now
        sys.stderr.write(f"copying {table}: {done:,}/{total:,} rows "
                         f"({now - self._started:.1f} s)\n")
        sys.stderr.flush()


@db.command()
@click.option("--to", "url", required=True, metavar="URL",
              help="An empty PostgreSQL database, as a libpq URL without a password "
                   "(postgresql://USER@HOST:PORT/DATABASE; the password from PGPASSWORD, "
                   "~/.pgpass or a service file).")
@workspace_option
@json_option
@click.pass_context
def copy(ctx: click.Context, url: str, workspace_dir: Path | None, as_json: bool) -> None:
    """Copy this workspace's SQLite database into an empty PostgreSQL database.

    Every table is copied row for row with its ids (releases, artifacts, runs with every
    sample, events, deployments, datasets, evaluations, checks, comparisons), devtrack's
    schema created there first; then the audit trail is verified on the copy. All in one
    transaction: an error or a kill leaves the target empty. Refused (exit 2, nothing
    written): a database that holds any row, a URL with a password, an unreachable server.
    The artifact files stay where they are.

    \b
    Examples:
      createdb -h db.internal devtrack
      devtrack db copy --to postgresql://ci@db.internal:5432/devtrack
      devtrack db copy --to postgresql://ci@db.internal/devtrack --json -w ~/team-ws
    """
    from devtrack.dbcopy import copy_database

    ws = open_ws(ctx, workspace_dir)
    result = copy_database(ws, url, CopyProgressLines())
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"Copied {result.total_rows:,} rows into {result.target} in "
               f"{result.seconds:.2f} s; the audit trail verifies there "
               f"({result.events_verified:,} events).")
    click.echo("  " + ", ".join(f"{name} {count:,}" for name, count in result.rows.items()))
