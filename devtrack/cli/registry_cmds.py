"""Workspace and release-registry commands: init, register, models, releases, show, log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from devtrack.cli.common import console, echo_json, json_option, open_ws, workspace_option
from devtrack.core.inputspec import parse_fill_spec, parse_input_spec
from devtrack.core.refs import check_model_name, parse_ref
from devtrack.registry import (
    RegisterRequest,
    list_models,
    list_releases,
    register_or_restore,
    require_model,
)
from devtrack.workspace import Workspace, init_workspace


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--database", metavar="URL",
              help="A PostgreSQL database shared by a team (postgresql://USER@HOST:PORT/DB, "
                   "no password in it), recorded in .devtrack/config.toml; no SQLite file is "
                   "created. $DEVTRACK_DATABASE_URL does the same without a file.")
@click.option("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
              help="One artifact store for every runner: a shared directory or a bucket, "
                   "recorded in .devtrack/config.toml ($DEVTRACK_ARTIFACTS_URL overrides it).")
@json_option
def init(directory: Path, database: str | None, artifacts: str | None, as_json: bool) -> None:
    """Create a workspace (.devtrack/ with the database and artifact store) in DIRECTORY.

    Also copies the shipped device profiles into DIRECTORY/device_profiles/ so your team can
    edit its own. Running it again on an existing workspace changes nothing. With --database
    the workspace uses that PostgreSQL database (reached and set up first; a URL holding a
    password is refused: give it through PGPASSWORD, ~/.pgpass or a service file).

    Examples: devtrack init my-models
              devtrack init --database postgresql://ci@db.internal/devtrack --artifacts /mnt/models
    """
    from devtrack.profiles import workspace_profiles_dir

    profiles_dir = workspace_profiles_dir(directory.expanduser().resolve())
    existing = set(profiles_dir.glob("*.toml")) if profiles_dir.is_dir() else set()
    ws, created = init_workspace(directory, database=database, artifacts=artifacts)
    location = ws.store.location
    ws.close()
    copied = sorted(set(profiles_dir.glob("*.toml")) - existing)
    if as_json:
        echo_json({"workspace": str(ws.root), "created": created, "database": location,
                   "profiles_copied": [str(p) for p in copied]})
        return
    verb = "Created" if created else "Already a workspace:"
    click.echo(f"{verb} {ws.root}/.devtrack (database: {location})")
    if copied:
        click.echo(f"Copied {len(copied)} device profiles into {ws.profiles_dir}")
    click.echo("Next: devtrack register MODEL_FILE --model NAME --version 1.0.0 --notes '...'")


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--model", "-m", required=True, help="Model line name, e.g. hand-landmark.")
@click.option("--version", "-v", "version", required=True, help="Release version, e.g. 1.2.0.")
@click.option("--parent", help="Version this release was derived from (same model line); "
              "'deployed': the release deployed now (none deployed: no parent, with a note).")
@click.option("--notes", default="", help="Release notes (what changed and why).")
@click.option("--notes-file", type=click.Path(path_type=Path),
              help="Read release notes from a file.")
@click.option("--data-version", help="Version of the training/calibration data, e.g. 2024-05.")
@click.option("--data-file", type=click.Path(path_type=Path),
              help="A data file whose sha256 is recorded as the data hash.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="Training/export config (JSON, TOML or YAML); stored as JSON.")
@click.option("--run-id", help="Training run id (e.g. from your experiment tracker).")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE label; repeatable.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=1x3x224x224[:dtype]",
              help="Shape for an input with dynamic dimensions; repeatable.")
@click.option("--fill", "fills", multiple=True, metavar="NAME=VALUE",
              help="Fixed value for an input such as a sample rate; it must fit the input's "
                   "dtype (e.g. 0..255 for uint8); repeatable.")
@click.option("--task", type=click.Choice(["classification", "regression", "detection", "other"]),
              help="Task of the model line (set when the line is first registered).")
@workspace_option
@json_option
@click.pass_context
def register(ctx: click.Context, file: Path, model: str, version: str, parent: str | None,
             notes: str, notes_file: Path | None, data_version: str | None,
             data_file: Path | None, config_file: Path | None, run_id: str | None,
             tags: tuple[str, ...], inputs: tuple[str, ...], fills: tuple[str, ...],
             task: str | None, workspace_dir: Path | None, as_json: bool) -> None:
    """Register FILE (.onnx or .tflite) as MODEL@VERSION with its provenance.

    The file is checked, summarised (inputs, outputs, ops, parameters, quantization) and copied
    into the workspace's content-addressed store. The git commit of the current folder, the
    user, host and time are recorded automatically. MODEL@VERSION taken: exit 2. When the
    stored copy of FILE is missing or was modified, it is restored from FILE (an
    artifact_restore event records it), even if MODEL@VERSION already holds this file.

    \b
    Example:
      devtrack register build/kws.onnx --model kws --version 1.1.0 --parent 1.0.0 \\
        --notes "int8 dynamic quantization" --data-version 2024-05 --config train.yaml \\
        --input audio=1x16000 --fill sr=16000 --tag device=pixel8
    """
    request = RegisterRequest(
        file=file, model=model, version=version, parent=parent, notes=notes,
        notes_file=notes_file, data_version=data_version, data_file=data_file,
        config_file=config_file, run_id=run_id, tags=list(tags),
        input_specs=[parse_input_spec(s) for s in inputs],
        fills=[parse_fill_spec(s) for s in fills], task=task,
    )
    ws = open_ws(ctx, workspace_dir)
    done = register_or_restore(ws, request)
    release = done.release
    if done.note is not None:
        click.echo(done.note, err=True)
    if as_json:
        echo_json({**release.to_dict(), "created": done.created, "restored": done.restored})
        return
    out = console()
    if done.restored is not None:
        out.print(f"Restored the stored copy of {release.sha256[:12]} from {file} (it was "
                  f"{done.restored}); recorded in the audit log", markup=False, style="yellow")
    if not done.created:
        out.print(f"{release.ref} was already registered with this file; nothing else changed",
                  markup=False)
        return
    out.print(f"Registered {release.ref}", markup=False)
    s = release.summary
    out.print(
        f"  {release.format}, {release.size_bytes:,} bytes, {s.params:,} params, "
        f"quantization {s.quantization}, sha256 {release.sha256[:12]}",
        markup=False,
    )
    if release.same_artifact_as:
        out.print(f"  same artifact as {', '.join(release.same_artifact_as)}", markup=False,
                  style="yellow")
    dynamic = [t.name for t in s.inputs if t.is_dynamic]
    given = {x.name for x in release.input_specs} | {x.name for x in release.fills}
    missing = [n for n in dynamic if n not in given]
    if missing:
        out.print(
            f"  note: inputs {', '.join(missing)} have dynamic dimensions; give --input "
            "NAME=DIMS when benchmarking", markup=False, style="yellow",
        )


@click.command()
@workspace_option
@json_option
@click.pass_context
def models(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> None:
    """List the model lines in the workspace.

    Example: devtrack models --json
    """
    rows = list_models(open_ws(ctx, workspace_dir))
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No models yet. Add one: devtrack register FILE --model NAME --version 1.0.0")
    else:
        from devtrack.cli.plain import print_models

        print_models(rows)


@click.command()
@click.argument("model", required=False)
@click.option("--profile", "-p", "profile_name", metavar="NAME",
              help="Add each release's latest figures on this device profile: budget verdict, "
                   "p50 and its change, p90, peak memory, accuracy, where it is live.")
@workspace_option
@json_option
@click.pass_context
def releases(ctx: click.Context, model: str | None, profile_name: str | None,
             workspace_dir: Path | None, as_json: bool) -> None:
    """List releases, of every model or of MODEL.

    \b
    Examples:
      devtrack releases hand-landmark
      devtrack releases hand-landmark --profile phone-4t
    """
    ws = open_ws(ctx, workspace_dir)
    if model is not None:
        check_model_name(model)
    items = list_releases(ws, model)
    if profile_name is not None:
        _releases_on_profile(ws, model, profile_name, as_json, bool(items))
    elif as_json:
        echo_json([r.to_list_dict() for r in items])
    elif not items:
        click.echo("No releases yet. Add one: devtrack register FILE --model NAME --version 1.0.0")
    else:
        from devtrack.cli.plain import print_releases

        print_releases(items, f"Releases of {model}" if model else "Releases",
                       one_model=model is not None)


def _releases_on_profile(ws: Workspace, model: str | None, profile: str, as_json: bool,
                         any_release: bool) -> None:
    """``releases --profile``: one table of figures per model line."""
    from devtrack.cli.common import check_profile_name
    from devtrack.overview import release_overview

    check_profile_name(ws, profile)
    names = [model] if model is not None else [m["model"] for m in list_models(ws)]
    tables = [release_overview(ws, name, profile) for name in names]
    if as_json:
        echo_json([{"profile": profile, **row.to_dict()} for t in tables for row in t.rows])
        return
    if not any_release:
        click.echo("No releases yet. Add one: devtrack register FILE --model NAME --version 1.0.0")
        return
    from devtrack.cli.plain import print_figures

    for i, table in enumerate(t for t in tables if t.rows):
        if i:
            click.echo()
        print_figures(table)


@click.command()
@click.argument("ref", metavar="MODEL@VERSION")
@workspace_option
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, workspace_dir: Path | None, as_json: bool) -> None:
    """Show one release: provenance, model summary, notes and the figures that count.

    Per profile the figures come from the run that counts: the newest ok run under the
    profile's current conditions. VERSION may be 'latest'.

    Example: devtrack show hand-landmark@latest
    """
    from devtrack.overview import budget_verdict, release_detail

    ws = open_ws(ctx, workspace_dir)
    detail = release_detail(ws, parse_ref(ref))
    measured = [{
        "profile": p.profile,
        "deployed": p.deployed,
        "runs": len(p.runs),
        "run_id": p.counted["run_id"] if p.counted else None,
        "p50_ms": p.counted["p50_ms"] if p.counted else None,
        "p90_ms": p.counted["p90_ms"] if p.counted else None,
        "peak_rss_mb": p.counted["peak_rss_mb"] if p.counted else None,
        "accuracy": (p.evaluation or {}).get("accuracy"),
        "budgets": budget_verdict(p.budget_results) if p.counted else "not measured",
        "conditions_note": p.conditions_note(),
    } for p in detail.profiles]
    if as_json:
        echo_json({**detail.release.to_dict(), "measured": measured})
    else:
        from devtrack.cli.render import release_view

        console().print(release_view(detail.release, measured))


@click.command(name="log")
@click.argument("model", required=False)
@click.option("--kind", help="Only events of this kind (register, bench, promote, deploy, ...).")
@workspace_option
@json_option
@click.pass_context
def log_cmd(ctx: click.Context, model: str | None, kind: str | None,
            workspace_dir: Path | None, as_json: bool) -> None:
    """Show the audit trail (every change, hash-chained), of every model or of MODEL.

    Example: devtrack log hand-landmark --json
    """
    ws = open_ws(ctx, workspace_dir)
    if model is not None:
        require_model(ws, model)
    events = ws.store.events(model=model, kind=kind)
    if as_json:
        for event in events:
            event["payload"] = json.loads(event["payload"])
        echo_json(events)
    elif not events:
        click.echo("No events yet.")
    else:
        from devtrack.cli.render import events_table

        console().print(events_table(events, f"Audit log of {model}" if model else "Audit log",
                                     one_model=model is not None))


COMMANDS = [init, register, models, releases, show, log_cmd]
