"""Commands for device profiles and benchmarks: profiles, bench, results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from devtrack.cli.alert_cmds import notify_decision, notify_option, notify_plan
from devtrack.cli.common import (
    check_profile_name,
    console,
    echo_json,
    err_console,
    interruptible,
    json_option,
    open_ws,
    resolve_deployed,
    workspace_option,
)
from devtrack.cli.render import literal, runs_table
from devtrack.core.budgets import budget_line
from devtrack.core.inputspec import parse_fill_spec, parse_input_spec
from devtrack.core.limits import BOUNDS
from devtrack.core.profile import Profile
from devtrack.core.refs import parse_ref
from devtrack.errors import UsageError, WorkspaceError
from devtrack.workspace import find_workspace_root

if TYPE_CHECKING:
    from devtrack.orchestration import JobEvent


@click.command()
@workspace_option
@json_option
@click.pass_context
def profiles(ctx: click.Context, workspace_dir: Path | None, as_json: bool) -> int:
    """List and validate device profiles (the workspace's own, then the shipped ones).

    A profile that does not validate is listed with its error, and the exit code is 2.

    Example: devtrack profiles --json
    """
    from devtrack.profiles import list_profiles

    root = _workspace_root_or_none(ctx, workspace_dir)
    entries = list_profiles(root)
    if as_json:
        echo_json([_profile_json(e) for e in entries])
    else:
        from rich.table import Table

        table = Table(title="Device profiles", title_justify="left")
        for column in ("name", "threads", "cores", "mem cap", "formats", "budgets"):
            table.add_column(column, no_wrap=column == "name",
                             ratio=1 if column == "budgets" else None)
        for e in entries:
            if e.profile is None:
                table.add_row(literal(e.name), "", "", "", "",
                              literal(f"INVALID: {e.error}"), style="red")
                continue
            p = e.profile
            budgets = budget_line(p.budgets.items())
            table.add_row(
                literal(p.name + ("" if e.source == "shipped" else " (own)")),
                str(p.execution.threads),
                ",".join(map(str, p.execution.cpu_affinity)) or "-",
                f"{p.execution.memory_limit_mb} MB" if p.execution.memory_limit_mb else "-",
                " ".join(p.formats), budgets,
            )
        console().print(table)
    return 2 if any(not e.ok for e in entries) else 0


def _profile_json(entry: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": entry.name, "path": str(entry.path), "source": entry.source,
                            "valid": entry.ok, "error": entry.error}
    if entry.profile is not None:
        p: Profile = entry.profile
        data.update(p.to_dict())
        data["threads"] = p.execution.threads
        data["budgets"] = p.budgets.items()
        data["hash"] = p.hash
        data["conditions_hash"] = p.conditions_hash
    return data


def _workspace_root_or_none(ctx: click.Context, workspace_dir: Path | None) -> Path | None:
    chosen = workspace_dir or (ctx.obj or {}).get("workspace_dir")
    try:
        return find_workspace_root(chosen)
    except WorkspaceError:
        if chosen is not None:
            raise
        return None


def _select_profiles(root: Path, names: tuple[str, ...], all_profiles: bool) -> list[Profile]:
    from devtrack.profiles import list_profiles, load_profile

    if names and all_profiles:
        raise UsageError("give --profile NAME or --all-profiles, not both")
    if all_profiles:
        entries = list_profiles(root)
        broken = [e for e in entries if not e.ok]
        if broken:
            raise UsageError(broken[0].error or f"profile {broken[0].name} is invalid")
        return [e.profile for e in entries if e.profile is not None]
    if not names:
        known = ", ".join(e.name for e in list_profiles(root))
        raise UsageError(f"choose where to measure: --profile NAME (repeatable) or "
                         f"--all-profiles; profiles here: {known}")
    return [load_profile(name, root) for name in dict.fromkeys(names)]


def bounded(key: str) -> click.ParamType:
    """A flag type with the bounds of the profile ``key`` it overrides (core/limits.py)."""
    bound = BOUNDS[key]
    if bound.integer:
        return click.IntRange(int(bound.low), int(bound.high), min_open=bound.low_open)
    return click.FloatRange(bound.low, bound.high, min_open=bound.low_open)


class _Progress:
    """Bench progress on stderr: one Rich line per device on a terminal (devices measure in
    parallel), plain lines otherwise (CI logs); skipped pairs first."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}  # device -> its Rich task
        self._labels: dict[str, str] = {}  # device -> the job it runs now
        self._waiting: dict[str, str] = {}  # device -> the last "waiting for …" said

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __call__(self, event: JobEvent) -> None:
        if event.kind == "skipped":
            click.echo(f"skipped {event.label}", err=True)
        elif event.kind == "planned":
            self._planned(event)
        elif event.kind == "started":
            self._labels[event.device] = event.label
            self._describe(event, "starting")
            if self._bar is None:
                click.echo(f"[{event.index}/{event.total}] {event.label} ...", err=True)
        elif event.kind == "phase":
            rss = f", {event.rss_mb:.0f} MB" if event.rss_mb else ""
            self._describe(event, f"{event.phase or 'starting'} {event.elapsed_s:.0f} s{rss}")
            if (self._bar is None and event.phase.startswith("waiting for")
                    and self._waiting.get(event.device) != event.phase):
                # a busy device: say who holds it, once per holder (a log has no live line)
                self._waiting[event.device] = event.phase
                click.echo(f"[{event.index}/{event.total}] {event.label}: {event.phase}",
                           err=True)
        elif event.kind == "finished" and event.run is not None:
            line = f"{event.label}: {_one_line(event.run)}"
            if self._bar is None:
                click.echo(f"[{event.index}/{event.total}] {line}", err=True)
                return
            self._bar.advance(self._tasks[event.device])
            self._bar.console.print(line, markup=False, highlight=False)
            self._describe(event, "done")

    def _planned(self, event: JobEvent) -> None:
        if not self.tty:
            return
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), console=err_console(), transient=True)
            self._bar.__enter__()
        task = self._tasks.get(event.device)
        if task is None:
            self._tasks[event.device] = self._bar.add_task(event.device, total=1)
        else:
            self._bar.update(task, total=self._bar.tasks[task].total + 1)

    def _describe(self, event: JobEvent, what: str) -> None:
        if self._bar is None:
            return
        where = f"{event.device}: " if len(self._tasks) > 1 else ""
        self._bar.update(self._tasks[event.device],
                         description=f"{where}{self._labels.get(event.device, '')}: {what}")


def _one_line(run: dict[str, Any]) -> str:
    from devtrack.cli.render import evaluation_text
    from devtrack.core.units import format_latency

    if run["status"] != "ok":
        return f"{run['status'].upper()}: {run['error']}"
    line = (f"ok  p50 {format_latency(run['p50_ms'])}  p90 {format_latency(run['p90_ms'])}  "
            f"n={run['n']}  peak RSS {run['peak_rss_mb']:.1f} MB")
    evaluation = evaluation_text(run)
    return f"{line}  {evaluation}" if evaluation else line


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="MODEL@VERSION...")
@click.option("--profile", "-p", "profile_names", multiple=True,
              help="Device profile to measure on; repeatable.")
@click.option("--all-profiles", is_flag=True, help="Measure on every profile.")
@click.option("--runs", type=bounded("measurement.min_runs"),
              help="Override the profile's min_runs (stopping rule: the run still counts).")
@click.option("--min-time", type=bounded("measurement.min_time_s"),
              help="Override min_time_s in seconds (stopping rule: the run still counts).")
@click.option("--max-time", type=bounded("measurement.max_time_s"),
              help="Override max_time_s in seconds; must fit in the profile's timeout_s "
                   "(stopping rule: the run still counts).")
@click.option("--threads", type=bounded("execution.threads"),
              help="Override the profile's threads (a condition: the run counts only where "
                   "the profile has that many threads).")
@click.option("--input", "inputs", multiple=True, metavar="NAME=1x3x224x224[:dtype]",
              help="Input shape, replacing the release's stored spec; repeatable.")
@click.option("--fill", "fills", multiple=True, metavar="NAME=VALUE",
              help="Fixed input value, replacing the release's stored one; repeatable.")
@click.option("--op-profile", is_flag=True, help="Also record the top operators by time.")
@click.option("--eval", "eval_dataset", metavar="DATASET",
              help="After timing, run the dataset for accuracy and fidelity (default: the "
                   "model line's default dataset, if set).")
@click.option("--reference", metavar="MODEL@VERSION",
              help="Release to measure fidelity against (default: the release's parent).")
@click.option("--no-eval", is_flag=True, help="Timing only, even with a default dataset.")
@notify_option
@workspace_option
@json_option
@click.pass_context
@interruptible
def bench(ctx: click.Context, refs: tuple[str, ...], profile_names: tuple[str, ...],
          all_profiles: bool, runs: int | None, min_time: float | None, max_time: float | None,
          threads: int | None, inputs: tuple[str, ...], fills: tuple[str, ...],
          op_profile: bool, eval_dataset: str | None, reference: str | None, no_eval: bool,
          notify_urls: tuple[str, ...], workspace_dir: Path | None, as_json: bool) -> int:
    """Measure latency and memory of releases on device profiles, each in a fresh process.

    Every (release, profile) pair runs in its own worker with the profile's threads, CPU
    affinity, memory cap and timeout. With a dataset (--eval, or the model line's default),
    the worker then runs every sample for accuracy (top-1/top-5, or MAE/RMSE) and fidelity
    to a reference release, and flags NaN/Inf outputs. Exit 0 when every run succeeded, 1
    when one failed, 130 on Ctrl-C, 143 on SIGTERM (a cancelled CI job) and 129 on SIGHUP:
    finished runs are kept, the interrupted one is stored as aborted naming the signal.

    Profiles on different devices (their [execution] target) measure in parallel, one
    job per device at a time; local profiles share this host and run one after another.

    A run is identified by the profile's conditions (threads, CPU affinity, runtime
    options), not by its stopping rule: a run with --max-time is the one `check`, `show`
    and the app use next; a run with --threads counts only under a profile with that many.

    \b
    Examples:
      devtrack bench kws@1.1.0 --profile ci-host
      devtrack bench kws@1.0.0 kws@1.1.0 --all-profiles --json
      devtrack bench kws@1.1.0 -p ci-host --eval digits-test --reference kws@1.0.0
      devtrack bench vad@5.0 -p big-core-1t --input input=1x512 --fill sr=16000
      devtrack bench kws@1.1.0 -p ci-host --max-time 5   # a shorter window, same identity
      devtrack bench kws@1.1.0 -p ci-host --notify "$SLACK_URL"
    """
    from devtrack.benchmarking import BenchOverrides
    from devtrack.orchestration import bench as run_bench
    from devtrack.registry import get_release

    parsed = [parse_ref(r) for r in refs]
    overrides = BenchOverrides(
        min_runs=runs, min_time_s=min_time, max_time_s=max_time, threads=threads,
        input_specs=[parse_input_spec(s) for s in inputs],
        fills=[parse_fill_spec(s) for s in fills], op_profile=op_profile,
        eval_dataset=eval_dataset, reference=reference, evaluate=not no_eval,
    )
    alerts = notify_plan(ctx, workspace_dir, notify_urls)
    ws = open_ws(ctx, workspace_dir)
    chosen = _select_profiles(ws.root, profile_names, all_profiles)
    resolved = [resolve_deployed(ws, str(ref), profile_names) for ref in parsed]
    releases = list({r.id: r for r in (get_release(ws, ref) for ref in resolved)}.values())
    with _Progress() as progress:
        outcome = run_bench(ws, releases, chosen, overrides, on_event=progress)
    results = outcome.runs
    interrupted = outcome.interrupted
    if as_json:
        echo_json([_bench_json(r) for r in results])
    else:
        out = console()
        out.print(runs_table(results, "Benchmark results", wide=out.width >= 120))
    if interrupted is not None:
        from devtrack.interrupts import signal_name

        click.echo(f"interrupted ({signal_name(interrupted.signum)}): finished runs were kept, "
                   "the interrupted one is marked aborted", err=True)
        return interrupted.exit_code
    from devtrack.notify import notify_bench

    notify_decision(lambda: notify_bench(ws, alerts, results, chosen))
    return 0 if all(r["status"] == "ok" for r in results) else 1


BENCH_JSON_KEYS = ("model", "version", "profile", "status", "error", "init_ms", "first_ms",
                   "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms",
                   "max_ms", "cv", "ci_low_ms", "ci_high_ms", "n", "stop_reason", "peak_rss_mb",
                   "load_delta_mb", "baseline_rss_mb", "load_peak_mb", "inference_peak_mb",
                   "memory_method", "runtime", "runtime_version", "profile_hash",
                   "conditions_hash", "run_id", "warnings", "op_profile")


def _bench_json(run: dict[str, Any]) -> dict[str, Any]:
    from devtrack.evaluation import RUN_EVAL_KEYS

    data = {key: run.get(key) for key in BENCH_JSON_KEYS}
    data.update({key: run[key] for key in RUN_EVAL_KEYS if key in run})
    return data


@click.command("results")
@click.argument("ref", metavar="MODEL@VERSION")
@click.option("--profile", "-p", "profile_name", help="Only runs on this profile.")
@click.option("--samples", is_flag=True, help="With --json, include every latency sample (ms).")
@workspace_option
@json_option
@click.pass_context
def results_show(ctx: click.Context, ref: str, profile_name: str | None, samples: bool,
                 workspace_dir: Path | None, as_json: bool) -> None:
    """Show the stored benchmark runs of a release.

    ✓ (``counts`` in --json) marks the run that counts on each profile: the newest ok run
    under the profile's current conditions, the one every other view shows. A run imported
    from (or measured by) benchmark_model holds only aggregates: no samples.
    `devtrack results import --help` stores a benchmark_model log as a run.

    Example: devtrack results kws@1.1.0 --profile ci-host --json --samples
    """
    from devtrack.benchmarking import list_runs
    from devtrack.registry import get_release

    ws = open_ws(ctx, workspace_dir)
    release = get_release(ws, resolve_deployed(ws, str(parse_ref(ref)),
                                               [profile_name] if profile_name else []))
    runs = list_runs(ws, release, profile_name, with_samples=samples and as_json)
    if not runs:
        check_profile_name(ws, profile_name)
    _mark_counted(ws, release.id, runs)
    if as_json:
        echo_json(runs)
    elif not runs:
        click.echo(f"No runs of {release.ref} yet. Measure it: devtrack bench {release.ref} "
                   "--profile NAME")
    else:
        out = console()
        out.print(runs_table(runs, f"Runs of {release.ref}", wide=out.width >= 120,
                             one_release=True))


def _mark_counted(ws: Any, release_id: int, runs: list[dict[str, Any]]) -> None:
    """Set ``counts`` on each run: whether it is the run that counts on its profile."""
    from devtrack.counted_runs import choose, conditions_now
    from devtrack.overview import load_profile_or_error

    counted = set()
    for name in {run["profile"] for run in runs}:
        loaded, _ = load_profile_or_error(ws, name)
        chosen = choose(ws, release_id, name, conditions_now(loaded)).run
        if chosen is not None:
            counted.add(chosen["id"])
    for run in runs:
        run["counts"] = run["run_id"] in counted


@click.command("import")
@click.argument("log", metavar="LOG", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(["benchmark_model"]),
              help="What wrote LOG: LiteRT's benchmark_model (its stdout or logcat).")
@click.option("--release", "release_ref", required=True, metavar="MODEL@VERSION",
              help="The (TFLite) release the log measured.")
@click.option("--profile", "-p", "profile_name", required=True, metavar="NAME",
              help="The device profile it ran under (threads and XNNPACK must match).")
@workspace_option
@json_option
@click.pass_context
def results_import(ctx: click.Context, log: Path, fmt: str, release_ref: str,
                   profile_name: str, workspace_dir: Path | None, as_json: bool) -> None:
    """Store a benchmark_model log as a run of a release (only aggregates: no samples).

    Reads init, first inference, warm-up, count, min/max/avg/std/p5/median/p95, memory
    footprint and, from --enable_op_profiling, the per-node and per-op-type tables; with or
    without INFO: or logcat prefixes. The run is sealed in the audit trail as a bench run.
    A crashed or truncated log, an unknown release or profile, an ONNX release, or a log
    whose threads or XNNPACK differ from the profile's is exit 2, and nothing is stored.
    Comparisons involving such a run show medians side by side, with no statistical verdict.

    \b
    Examples:
      devtrack results import --format benchmark_model bm.log --release kws@1.1.0 -p pixel8
      adb logcat -d -s tflite > bm.log && devtrack results import --format benchmark_model \\
          bm.log --release kws@1.1.0 --profile pixel8 --json
    """
    from devtrack.results_import import import_log

    ws = open_ws(ctx, workspace_dir)
    run = import_log(ws, log, str(parse_ref(release_ref)), profile_name, fmt)
    if as_json:
        echo_json(_bench_json(run))
        return
    click.echo(f"Imported {run['model']}@{run['version']} on {run['profile']} as run "
               f"{run['run_id']}: median {run['p50_ms']:.4g} ms over {run['n']} runs "
               "(only aggregates: no samples)")


class _ResultsGroup(click.Group):
    """`results MODEL@VERSION` shows runs; `results import …` stores a log as a run."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        if args and args[0] in self.commands:
            return super().make_context(info_name, args, parent, **extra)
        return results_show.make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.command is not self:  # `results MODEL@VERSION`
            return ctx.command.invoke(ctx)
        return super().invoke(ctx)


results = _ResultsGroup(
    "results", commands={"import": results_import},
    help="Show the stored benchmark runs of a release, or import a benchmark_model log.\n\n"
         "\b\nExamples:\n  devtrack results kws@1.1.0 --profile ci-host\n"
         "  devtrack results import --format benchmark_model bm.log --release kws@1.1.0 "
         "-p pixel8")


COMMANDS = [profiles, bench, results]
