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


def _walk(command: click.Command, path: str, ctx: click.Context
          ) -> list[tuple[str, click.Command]]:
    """``command`` and every command under it, at any depth, by their full path."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} {name}"
            found += _walk(sub, f"{path} {name}".strip(), click.Context(sub, parent=ctx))
    return found


def _all_commands() -> list[tuple[str, click.Command]]:
    return _walk(cli, "", click.Context(cli))[1:]


def test_the_walk_reaches_every_command_and_sub_command() -> None:
    names = [name for name, _ in _all_commands()]
    assert set(LAZY_COMMANDS) <= set(names)
    assert {"dataset add", "dataset list", "audit verify"} <= set(names)


@pytest.mark.parametrize(("name", "command"), _all_commands())
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help, f"devtrack {name} has no help text"
    assert "Example" in command.help, f"devtrack {name} --help shows no example"
    assert f"devtrack {name} " in command.help, \
        f"devtrack {name} --help has no example that runs 'devtrack {name}'"


def test_commands_the_app_suggests_exist() -> None:
    import re

    from devtrack.tui.widgets.empty_state import guide_text

    ctx = click.Context(cli)
    suggested = re.findall(r"^\s*devtrack ([a-z-]+)", guide_text().plain, flags=re.MULTILINE)
    assert {"register", "bench", "demo"} <= set(suggested)
    for name in suggested:
        assert cli.get_command(ctx, name) is not None, f"the app suggests 'devtrack {name}'"


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_help_line_matches_the_command(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert LAZY_COMMANDS[name][2] == command.get_short_help_str(limit=1000)


HEAVY = ("textual", "onnxruntime", "onnx", "ai_edge_litert", "numpy", "sqlite_utils",
         "apprise", "psycopg", "boto3", "botocore")
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
