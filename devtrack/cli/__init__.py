"""The ``devtrack`` command line: a thin layer over the library; errors map to exit codes here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from devtrack import __version__
from devtrack.cli.lazy import LazyGroup
from devtrack.core.text import clip_long_words
from devtrack.errors import DevtrackError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--workspace",
    "-w",
    "workspace_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace folder (default: search upward from here, or $DEVTRACK_WORKSPACE).",
)
@click.version_option(__version__, prog_name="devtrack")
@click.pass_context
def cli(ctx: click.Context, workspace_dir: Path | None) -> None:
    """Track, benchmark, compare, gate and roll back on-device model releases.

    \b
    Start here:
      devtrack init                      create a workspace in this folder
      devtrack register model.onnx --model kws --version 1.0.0 --notes "first build"
      devtrack releases                  list what is registered
      devtrack show kws@latest           everything about one release
    """
    ctx.ensure_object(dict)
    ctx.obj["workspace_dir"] = workspace_dir
    if ctx.invoked_subcommand is None:
        from devtrack.cli.tui_cmds import open_app_or_help

        open_app_or_help(ctx, workspace_dir)  # the app on a terminal, this help otherwise


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 a check failed, 2 bad input, 130 Ctrl-C."""
    try:
        result = cli.main(args=argv, prog_name="devtrack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.NoArgsIsHelpError as exc:  # e.g. "devtrack audit": its help
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:  # one line, as for every other bad input
        click.echo(f"error: {clip_long_words(usage_error_message(exc))}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DevtrackError as exc:
        click.echo(f"error: {clip_long_words(str(exc))}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        message = environment_error_message(exc)
        if message is None:
            raise  # a bug in devtrack: the traceback is what a bug report needs
        click.echo(f"error: {clip_long_words(message)}", err=True)
        return EXIT_USAGE
    if isinstance(result, int):
        return result
    return EXIT_OK


def usage_error_message(exc: click.UsageError) -> str:
    """Click's message on one line, pointing at the command's own help."""
    text = " ".join(exc.format_message().split())
    if exc.ctx is not None:
        text += f" (see '{exc.ctx.command_path} --help')"
    return text


def environment_error_message(exc: Exception) -> str | None:
    """One line for failures of the machine rather than of devtrack: a folder that cannot be
    written. None for anything else. (The store turns database failures into DevtrackErrors.)"""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return None


def entry_point() -> None:
    sys.exit(main())
