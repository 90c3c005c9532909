"""The ``demo`` command: build a real, fully measured example workspace in one go."""

from __future__ import annotations

from pathlib import Path

import click

from devtrack.cli.common import echo_json, json_option


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), default="devtrack-demo")
@click.option("--no-tui", is_flag=True, help="Do not open the review app at the end.")
@json_option
def demo(directory: Path, no_tui: bool, as_json: bool) -> None:
    """Build a demo workspace in DIRECTORY (default ./devtrack-demo) and open it.

    Offline and for real: trains a small digits classifier with numpy on the bundled UCI
    8x8 digits data, exports four releases (float32 ONNX, int8 ONNX, TFLite, and a build that
    regresses) with provenance, benchmarks and evaluates each on two device profiles,
    checks them against their budgets and the deployed release, and deploys. On a terminal
    it then opens the review app (--no-tui to skip).

    Example: devtrack demo /tmp/demo --no-tui
    """
    from devtrack.cli.tui_cmds import on_terminal
    from devtrack.demo.build import build_demo, check_demo_target

    check_demo_target(directory.expanduser().resolve())

    def say(line: str) -> None:
        if not as_json:
            click.echo(f"  {line}", err=True)

    if not as_json:
        click.echo(f"Building the devtrack demo in {directory} (about half a minute)", err=True)
    from devtrack.interrupts import signals_interrupt

    with signals_interrupt():  # SIGTERM stops its workers like Ctrl-C; not in the app after
        result = build_demo(directory, say)
    if as_json:
        echo_json(result.to_dict())
        return
    ws = result.workspace
    deployed = ", ".join(f"{v} on {p}" for p, v in sorted(result.deployed.items()))
    click.echo(f"\nDone in {result.seconds:.0f} s: {len(result.releases)} releases of "
               f"{result.model}, every figure measured here. Deployed: {deployed}.")
    click.echo("\nTry next:")
    for line in (
        f"cd {ws}",
        f"devtrack releases {result.model} --profile big-core-1t",
        f"devtrack show {result.model}@1.1.0",
        f"devtrack results {result.model}@1.3.0",
        f"devtrack compare {result.model}@1.0.0 {result.model}@1.1.0 --profile big-core-1t",
        f"devtrack check {result.model}@1.3.0 --profile big-core-1t   # exits 1: a regression",
        f"devtrack explain {result.model}@1.1.0 {result.model}@1.3.0 -p big-core-1t   # why",
        f"devtrack bisect {result.model} --good 1.0.0 --bad 1.3.0 -p big-core-1t",
        f"devtrack rollback {result.model} --profile big-core-1t --reason 'test' --dry-run",
        f"devtrack log {result.model}",
        "devtrack audit verify",
        "devtrack                                  # the review app (B on 1.3.0 bisects it)",
    ):
        click.echo(f"  {line}")
    if not no_tui and on_terminal():
        from devtrack.tui.app import run_app

        run_app(ws, model=result.model)


COMMANDS = [demo]
