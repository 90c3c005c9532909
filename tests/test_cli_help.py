"""Every command has help with an example; --help and read-only commands stay light to start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from devtrack.cli import cli
from devtrack.cli.lazy import LAZY_COMMANDS


def _all_commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    found = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name
        found.append((name, command))
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx)
            for sub in command.list_commands(sub_ctx):
                sub_command = command.get_command(sub_ctx, sub)
                assert sub_command is not None
                found.append((f"{name} {sub}", sub_command))
    return found


@pytest.mark.parametrize(("name", "command"), _all_commands())
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help, f"devtrack {name} has no help text"
    if not isinstance(command, click.Group):
        assert "Example" in command.help, f"devtrack {name} --help shows no example"


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_help_line_matches_the_command(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert LAZY_COMMANDS[name][2] == command.get_short_help_str(limit=1000)


HEAVY = ("textual", "onnxruntime", "onnx", "ai_edge_litert", "numpy", "sqlite_utils")
# The start-up target of ``--help`` and ``releases`` leaves no room for Rich's ~30 ms import.
LIGHT = [["--help"], ["releases"], ["releases", "kws"], ["releases", "--json"], ["models"]]


@pytest.mark.parametrize("args", [*LIGHT, ["log", "--json"]])
def test_read_only_commands_do_not_import_heavy_modules(args: list[str], in_ws: Path,
                                                        mlp_onnx: Path, run_cli) -> None:
    heavy = (*HEAVY, "rich") if args in LIGHT else HEAVY
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    probe = (
        "import sys, json\n"
        "from devtrack.cli import main\n"
        f"code = main({args!r})\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=in_ws, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
