"""Evaluation dataset commands: dataset add, dataset list, dataset default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from devtrack.cli.common import console, echo_json, json_option, open_ws, workspace_option
from devtrack.errors import UsageError

if TYPE_CHECKING:
    from devtrack.core.dataset import Dataset

TASK_CHOICES = ("classification", "regression")


def _arrays_text(dataset: Dataset) -> str:
    """``input[8x8]:float32, labels:int64``: each array's per-sample shape and dtype."""
    parts = []
    for name, spec in dataset.arrays.items():
        shape = f"[{'x'.join(map(str, spec.sample_shape))}]" if spec.sample_shape else ""
        parts.append(f"{name}{shape}:{spec.dtype}")
    return ", ".join(parts)


@click.group()
def dataset() -> None:
    """Evaluation datasets: .npz files that bench runs releases on for accuracy and fidelity.

    A dataset holds one array per model input, named as the input (first axis = samples),
    and optionally `labels` (class ids, or regression targets).

    Example: devtrack dataset add digits.npz --name digits-test
    """


@dataset.command(name="add")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Name to refer to it by, e.g. digits-test.")
@click.option("--task", type=click.Choice(TASK_CHOICES),
              help="What the labels are (default: integer labels → classification, float "
                   "labels → regression).")
@click.option("--max-size", "max_size", metavar="SIZE", default=None,
              help="Largest total size of the arrays, uncompressed, read from the file's "
                   "headers before anything is loaded (default 1GiB; e.g. 2GiB, 500MB).")
@workspace_option
@json_option
@click.pass_context
def add(ctx: click.Context, file: Path, name: str, task: str | None, max_size: str | None,
        workspace_dir: Path | None, as_json: bool) -> None:
    """Store FILE (.npz) content-addressed as dataset NAME, with its shapes and sample count.

    Sizes are read from the .npy headers inside the file before any array is loaded; a file
    over --max-size (default 1GiB uncompressed), one whose headers disagree with its contents,
    and arrays of Python objects are refused.

    \b
    Examples:
      python -c "import numpy as np; np.savez('d.npz', input=x, labels=y)"
      devtrack dataset add d.npz --name digits-test
      devtrack dataset add big.npz --name speech-full --max-size 4GiB
      devtrack bench kws@1.1.0 --profile ci-host --eval digits-test
    """
    from devtrack.core.units import parse_size
    from devtrack.datasets import add_dataset

    max_bytes = parse_size(max_size, "--max-size") if max_size is not None else None
    ws = open_ws(ctx, workspace_dir)
    added = add_dataset(ws, file, name, task, max_bytes)
    if as_json:
        echo_json(added.to_dict())
        return
    labels = "labelled" if added.has_labels else "no labels (fidelity only)"
    click.echo(f"Added dataset {added.name}: {added.samples} samples, {added.task}, {labels}; "
               f"sha256 {added.sha256[:12]}")
    click.echo(f"Arrays (per sample): {_arrays_text(added)}")
    click.echo(f"Next: devtrack bench MODEL@VERSION --profile NAME --eval {added.name}, or "
               f"devtrack dataset default MODEL {added.name}")


@dataset.command(name="list")
@workspace_option
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> None:
    """List the registered evaluation datasets.

    Example: devtrack dataset list --json
    """
    from devtrack.datasets import list_datasets

    ws = open_ws(ctx, workspace_dir)
    found = list_datasets(ws)
    if as_json:
        echo_json([d.to_dict() for d in found])
        return
    if not found:
        click.echo("No datasets yet. Add one: devtrack dataset add FILE.npz --name NAME")
        return
    from rich.table import Table
    from rich.text import Text

    from devtrack.cli.plain import short_time
    from devtrack.cli.render import literal

    out = console()
    wide = out.width >= 110  # sha256 and date only where they fit; --json has them always
    table = Table(title="Datasets", title_justify="left")
    columns = [("name", "left"), ("task", "left"), ("samples", "right"),
               ("arrays per sample", "left"), ("default for", "left")]
    if wide:
        columns += [("sha256", "left"), ("added", "left")]
    for column, justify in columns:
        table.add_column(column, justify=justify,  # type: ignore[arg-type]
                         no_wrap=column in ("name", "task", "samples", "sha256", "added"))
    for d in found:
        cells: list[Text | str] = [literal(d.name), d.task, str(d.samples),
                                   literal(_arrays_text(d)),
                                   literal(", ".join(d.used_by) or "-")]
        if wide:
            cells += [d.sha256[:8], short_time(d.created_at)[:10]]
        table.add_row(*cells)
    out.print(table)


@dataset.command(name="default")
@click.argument("model")
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Stop evaluating MODEL by default.")
@workspace_option
@json_option
@click.pass_context
def default(ctx: click.Context, model: str, name: str | None, clear: bool,
            workspace_dir: Path | None, as_json: bool) -> None:
    """Show or set the dataset bench evaluates MODEL's releases on when --eval is not given.

    The dataset must fit the model line's latest release. `bench --no-eval` skips it.

    \b
    Examples:
      devtrack dataset default kws digits-test
      devtrack dataset default kws            (show it)
      devtrack dataset default kws --clear
    """
    from devtrack.datasets import default_dataset, set_default_dataset

    if clear and name is not None:
        raise UsageError("give a dataset NAME or --clear, not both")
    ws = open_ws(ctx, workspace_dir)
    if clear or name is not None:
        current = set_default_dataset(ws, model, name)
    else:
        current = default_dataset(ws, model)
    data: dict[str, Any] = {"model": model,
                            "dataset": current.name if current is not None else None}
    if as_json:
        echo_json(data)
    elif current is None:
        click.echo(f"{model} has no default dataset"
                   + ("" if clear else f"; set one: devtrack dataset default {model} NAME"))
    else:
        verb = "now evaluates" if name is not None else "evaluates"
        click.echo(f"{model} {verb} on {current.name} by default ({current.samples} samples, "
                   f"{current.task})")


COMMANDS: list[click.Command] = [dataset]
