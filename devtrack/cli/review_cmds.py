"""Review commands: compare two releases, gate a release in CI, and trend a metric."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from devtrack.cli.alert_cmds import notify_decision, notify_option, notify_plan
from devtrack.cli.common import (
    console,
    echo_json,
    interruptible,
    json_option,
    open_ws,
    resolve_deployed,
    workspace_option,
)
from devtrack.cli.render import literal
from devtrack.core.diff import show_value
from devtrack.core.profile import MAX_REPEATS
from devtrack.core.refs import parse_ref
from devtrack.core.units import format_number, format_size, latency_unit
from devtrack.errors import UsageError

if TYPE_CHECKING:
    from devtrack.comparison import Comparison, ProfileComparison
    from devtrack.gate import CheckReport
    from devtrack.pairing import RerunSettings
    from devtrack.trends import Trend

_VERDICT_STYLE = {"slower": "bold red", "faster": "bold green", "unchanged": ""}
_STATUS_STYLE = {"pass": "green", "fail": "bold red", "skipped": "dim",
                 "not_measured": "bold yellow"}
_PROFILE_STATUS = {"pass": Text("passed", style="green"), "fail": Text("FAILED", style="bold red"),
                   "not_measured": Text("NOT MEASURED", style="bold yellow")}


def repeats_option(func: Any) -> Any:
    """``--repeats N``: the most repeats a side-by-side measurement may add before it stops."""
    return click.option(
        "--repeats", type=click.IntRange(4, MAX_REPEATS), default=None, metavar="N",
        help=f"Most side-by-side repeats (even, 4 to {MAX_REPEATS}; default 24). Repeats are "
             "added until the 95% CI decides against the latency limit; a higher cap lets "
             "a noisy machine decide, at up to proportionally more time.")(func)


def clock_option(func: Any) -> Any:
    """``--clock cpu|wall``: which time per block the side-by-side decision judges."""
    return click.option(
        "--clock", type=click.Choice(["cpu", "wall"]), default=None,
        help="What the side-by-side decision judges: the worker's CPU time per block (cpu, "
             "the default: robust to a loaded machine, blind to a change that only alters "
             "how well threads overlap) or wall-clock time (wall: what a user waits, noisier "
             "when other jobs share the cores).")(func)


def _settings(repeats: int | None, clock: str | None = None) -> RerunSettings | None:
    """The side-by-side settings --repeats and --clock ask for (checked before anything
    runs); without --repeats the default cap is trimmed to the profile's timeout."""
    if repeats is None and clock is None:
        return None
    from devtrack.pairing import RerunSettings

    return RerunSettings(**({"repeats": repeats} if repeats is not None
                            else {"cap_given": False}), clock=clock or "cpu")


def _progress(message: str) -> None:
    click.echo(message + " ...", err=True)


# --- compare ------------------------------------------------------------------------------

@click.command()
@click.argument("ref_a", metavar="MODEL@A")
@click.argument("ref_b", metavar="MODEL@B")
@click.option("--profile", "-p", "profile_names", multiple=True,
              help="Only this device profile; repeatable (default: every profile both were "
                   "measured on).")
@click.option("--rerun", is_flag=True,
              help="Measure A and B again side by side, interleaved in one worker, and judge "
                   "latency on that (stored and audited).")
@repeats_option
@clock_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True, help="Output format (--json for JSON).")
@workspace_option
@json_option
@click.pass_context
@interruptible
def compare(ctx: click.Context, ref_a: str, ref_b: str, profile_names: tuple[str, ...],
            rerun: bool, repeats: int | None, clock: str | None, fmt: str,
            workspace_dir: Path | None, as_json: bool) -> None:
    """Compare release B with release A: what changed, and every metric with a verdict.

    Latency is a ratio of medians B/A with a 95% CI; it is slower or faster only when the
    change is significant and beyond the profile's max_latency_regression_pct (default 5%).
    Without --rerun the verdict comes from stored runs taken at different times and is
    indicative only. --rerun stops its worker on Ctrl-C (exit 130) or SIGTERM (143).

    \b
    Examples:
      devtrack compare kws@1.0.0 kws@1.1.0
      devtrack compare kws@1.0.0 kws@1.1.0 --profile ci-host --rerun
      devtrack compare kws@1.0.0 kws@1.1.0 --format markdown > compare.md
    """
    from devtrack.comparison import compare_releases

    if as_json and fmt != "text":
        raise UsageError("give --json or --format markdown, not both")
    if (repeats is not None or clock is not None) and not rerun:
        flag = "--repeats" if repeats is not None else "--clock"
        raise UsageError(f"{flag} sets the side-by-side measurement: add --rerun")
    settings = _settings(repeats, clock)
    a, b = parse_ref(ref_a), parse_ref(ref_b)
    ws = open_ws(ctx, workspace_dir)
    result = compare_releases(ws, resolve_deployed(ws, str(a), profile_names),
                              resolve_deployed(ws, str(b), profile_names), profile_names,
                              rerun=rerun, settings=settings, progress=_progress)
    if as_json:
        echo_json(result.to_dict())
    elif fmt == "markdown":
        from devtrack.reports import comparison_markdown

        click.echo(comparison_markdown(result), nl=False)
    else:
        console().print(_comparison_view(result))


def _comparison_view(c: Comparison) -> Group:

    d = c.diff
    parts: list[Any] = [Text.assemble("Compare ", literal(c.a.ref), " (A) → ",
                                      literal(c.b.ref), " (B)", style="bold")]
    changed = Table(title="What changed", title_justify="left")
    for name in ("field", "A", "B"):
        changed.add_column(name, overflow="fold")
    for f in d.changed_fields:
        changed.add_row(f.name, literal(show_value(f.a)), literal(show_value(f.b)))
    rel = f", {d.size_rel * 100:+.1f}%" if d.size_rel is not None else ""
    changed.add_row("size", format_size(d.size_a),
                    f"{format_size(d.size_b)} ({d.size_abs:+,} B{rel})")
    changed.add_row("same artifact", "", "yes: identical bytes" if d.same_artifact else "no")
    parts.append(changed)
    lines = ([Text.assemble("config + ", literal(f"{k} = {show_value(v)}"))
              for k, v in d.config.added.items()]
             + [Text.assemble("config - ", literal(f"{k} (was {show_value(v)})"))
                for k, v in d.config.removed.items()]
             + [Text.assemble("config ~ ", literal(f"{k}: {show_value(x)} → {show_value(y)}"))
                for k, (x, y) in d.config.changed.items()]
             + [Text.assemble("op + ", literal(f"{k} ×{v}")) for k, v in d.ops.added.items()]
             + [Text.assemble("op - ", literal(f"{k} ×{v}")) for k, v in d.ops.removed.items()]
             + [Text.assemble("op ~ ", literal(f"{k}: {x} → {y}"))
                for k, (x, y) in d.ops.changed.items()])
    parts += lines
    for p in c.profiles:
        parts.append(_profile_table(p))
    for name, why in c.not_comparable.items():
        parts.append(Text.assemble(literal(name), ": ", literal(why), style="yellow"))
    for note in c.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    if not c.profiles and not c.not_comparable:
        parts.append(Text("No measurements of either release to compare; measure both with "
                          "'devtrack bench A B --profile NAME' or use --rerun --profile NAME."))
    return Group(*parts)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _profile_table(p: ProfileComparison) -> Table:
    table = Table(title=Text.assemble("On ", literal(p.profile),
                                      f" (conditions {p.conditions_hash[:8] or '-'}, "
                                      f"limit {p.threshold_pct:g}%)"),
                  title_justify="left")
    table.add_column("metric")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("change", overflow="fold")
    table.add_column("verdict")
    lat = p.latency
    if lat is not None:
        how = "interleaved" if lat.method == "interleaved" else "stored, indicative"
        ci = f"{(lat.ci_low - 1) * 100:+.1f}…{(lat.ci_high - 1) * 100:+.1f}%"
        table.add_row(f"p50 ms ({how})", _num(lat.a_ms), _num(lat.b_ms),
                      f"{lat.pct:+.1f}% (CI {ci})",
                      Text(lat.verdict, style=_VERDICT_STYLE.get(lat.verdict, "")))
    for m in p.memory:
        unit = "ms" if m.metric.endswith("_ms") else "MB"
        change = "-" if m.abs is None else f"{m.abs:+.2f} {unit}" + (
            f" ({m.rel * 100:+.1f}%)" if m.rel is not None else "")
        table.add_row(m.metric, _num(m.a, 1), _num(m.b, 1), change, "")
    if p.accuracy is not None:
        acc = p.accuracy
        table.add_row(Text.assemble("accuracy ", literal(acc.dataset)), _num(acc.a, 4),
                      _num(acc.b, 4),
                      f"{acc.diff * 100:+.2f} pts (CI {acc.ci_low * 100:+.2f}…"
                      f"{acc.ci_high * 100:+.2f}, {acc.method})", "")
    for op in p.ops:
        table.add_row(Text.assemble("op ", literal(op.op)), _num(op.a_ms), _num(op.b_ms),
                      f"{op.b_ms - op.a_ms:+.3f} ms", "")
    for note in p.notes:
        table.add_row(Text(f"note: {note}", style="yellow"), "", "", "", "")
    return table


# --- check --------------------------------------------------------------------------------

@click.command()
@click.argument("ref", metavar="MODEL@CANDIDATE")
@click.option("--baseline", "baseline_ref", metavar="MODEL@VERSION",
              help="Judge regressions against this release (default: the release deployed "
                   "on each profile, else the candidate's parent).")
@click.option("--profile", "-p", "profile_names", multiple=True,
              help="Check on this device profile; repeatable (default: every profile the "
                   "candidate was measured on or its model is deployed on).")
@click.option("--bench", is_flag=True,
              help="Measure first what has no run under the profile's current conditions.")
@click.option("--no-rerun", is_flag=True,
              help="Judge regressions on stored runs instead of a fresh side-by-side "
                   "measurement (indicative only).")
@click.option("--inconclusive", type=click.Choice(["pass", "fail"]), default="pass",
              show_default=True,
              help="What a side-by-side latency verdict still undecided at the --repeats "
                   "cap does: pass with a note, or fail the check. Needs the "
                   "side-by-side measurement, so 'fail' cannot go with --no-rerun.")
@repeats_option
@clock_option
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write a JUnit XML report (one test case per profile × check).")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set).")
@notify_option
@workspace_option
@json_option
@click.pass_context
@interruptible
def check(ctx: click.Context, ref: str, baseline_ref: str | None,
          profile_names: tuple[str, ...], bench: bool, no_rerun: bool, inconclusive: str,
          repeats: int | None, clock: str | None, junit_path: Path | None,
          markdown_path: Path | None,
          notify_urls: tuple[str, ...], workspace_dir: Path | None, as_json: bool) -> int:
    """Gate a release: every budget and regression limit on each profile.

    Exit 0 when everything passes, 1 when a check fails or a figure is not measured (no run
    under the profile's current conditions: threads, affinity, runtime options; the report
    names the bench command, or add --bench), 2 on bad input (including a --repeats that
    does not fit in a profile's timeout_s), 130 on Ctrl-C and 143 on SIGTERM (the worker is
    stopped; a --bench run is stored as aborted). Budgets are judged on the newest ok run
    under those conditions, whatever its stopping rule. Regression limits
    are judged on a fresh interleaved measurement of baseline and candidate (both
    artifacts are in the store), unless --no-rerun. That measurement adds repeats until
    the 95% CI decides against the limit (slower, or a regression beyond it ruled out) or
    the --repeats cap (default 24, fewer when the profile's timeout_s holds fewer) is
    reached; a verdict still undecided there passes with a note, or fails with
    --inconclusive fail. Every check is stored and audited, with that policy.
    A failed check is sent, as one message, to --notify URLs and the [alerts] targets.

    \b
    Examples:
      devtrack check kws@1.1.0 --profile ci-host --junit reports/devtrack.xml
      devtrack check kws@1.1.0 --profile ci-host --bench --notify "$SLACK_URL"
      devtrack check kws@1.1.0 --profile ci-host --inconclusive fail --repeats 48
      devtrack check kws@1.1.0 --baseline kws@1.0.0 --bench --markdown summary.md
      devtrack check kws@latest --no-rerun --json
    """
    from devtrack.gate import check_release
    from devtrack.reports import (
        append_step_summary,
        check_junit,
        check_markdown,
        check_step_summary,
        check_writable,
        write_atomic,
    )

    candidate = parse_ref(ref)
    baseline = parse_ref(baseline_ref) if baseline_ref is not None else None
    if (repeats is not None or clock is not None) and no_rerun:
        flag = "--repeats" if repeats is not None else "--clock"
        raise UsageError(f"{flag} sets the side-by-side measurement, which --no-rerun skips; "
                         "drop one of the two")
    settings = _settings(repeats, clock)
    for path, option in ((junit_path, "--junit"), (markdown_path, "--markdown")):
        if path is not None:
            check_writable(path, option)
    check_step_summary()
    alerts = notify_plan(ctx, workspace_dir, notify_urls)
    ws = open_ws(ctx, workspace_dir)
    report = check_release(ws, resolve_deployed(ws, str(candidate), profile_names),
                           resolve_deployed(ws, str(baseline), profile_names)
                           if baseline else None,
                           profile_names, bench=bench, rerun=not no_rerun, settings=settings,
                           progress=_progress, inconclusive=inconclusive)
    markdown = check_markdown(report)
    if junit_path is not None:
        write_atomic(junit_path, check_junit(report))
    if markdown_path is not None:
        write_atomic(markdown_path, markdown)
    append_step_summary(markdown)
    if as_json:
        echo_json(report.to_dict())
    else:
        console().print(_check_view(report))
    from devtrack.notify import notify_check

    notify_decision(lambda: notify_check(ws, alerts, report))
    return 0 if report.passed else 1


def _check_view(report: CheckReport) -> Group:
    parts: list[Any] = []
    for p in report.profiles:
        title = Text.assemble(literal(p.profile), ": ", _PROFILE_STATUS[p.status])
        if p.baseline:
            title.append_text(Text.assemble(" (baseline ", literal(p.baseline),
                                            f", {p.baseline_source})"))
        table = Table(title=title, title_justify="left")
        table.add_column("check", overflow="fold")
        table.add_column("result")
        table.add_column("details", overflow="fold", ratio=1)
        for item in p.items:
            table.add_row(item.name, Text(item.status.replace("_", " "),
                                          style=_STATUS_STYLE.get(item.status, "")),
                          literal(item.message))
        if not p.items:
            table.add_row("-", "skipped", "the profile sets no budgets or limits")
        parts.append(table)
        for note in dict.fromkeys(p.notes):
            parts.append(Text.assemble("note: ", literal(note), style="yellow"))
    for note in report.notes:
        parts.append(Text.assemble("note: ", literal(note), style="yellow"))
    failures = report.failures()
    for p in report.profiles:
        if p.measure_with:
            parts.append(Text.assemble(Text("NOT MEASURED: ", style="bold yellow"),
                                       literal(p.profile), " has no run under its current "
                                       "conditions to judge; measure with: ",
                                       literal(p.measure_with), " (or check --bench)"))
    if failures:
        names = ", ".join(f"{item.name} on {profile}" for profile, item in failures)
        parts.append(Text.assemble(Text("FAILED: ", style="bold red"), literal(report.candidate),
                                   f" — {len(failures)} check(s) failed: ", literal(names)))
    elif not report.passed:
        unjudged = [p.profile for p in report.profiles if p.measure_with]
        parts.append(Text.assemble(Text("NOT MEASURED: ", style="bold yellow"),
                                   literal(report.candidate), " — no check failed, but "
                                   f"{len(unjudged)} profile(s) had nothing to judge it on: ",
                                   literal(", ".join(unjudged))))
    else:
        parts.append(Text.assemble(Text("PASSED: ", style="bold green"),
                                   literal(report.candidate),
                                   f" meets every budget and limit on "
                                   f"{len(report.profiles)} profile(s)"))
    return Group(*parts)


# --- trend --------------------------------------------------------------------------------

@click.command()
@click.argument("model")
@click.option("--profile", "-p", "profile_name", required=True, help="Device profile.")
@click.option("--metric", "-m", default="p50_ms", show_default=True,
              help="p50_ms, p90_ms, peak_rss_mb or accuracy.")
@workspace_option
@json_option
@click.pass_context
def trend(ctx: click.Context, model: str, profile_name: str, metric: str,
          workspace_dir: Path | None, as_json: bool) -> None:
    """Show one metric across a model's releases in order, marking regressions.

    A regression is a release worse than the previous measured one by more than the
    profile's threshold (max_latency_regression_pct for latency and memory,
    max_accuracy_drop for accuracy); ★ marks the release deployed on the profile.

    \b
    Examples:
      devtrack trend kws --profile ci-host --metric p50_ms
      devtrack trend kws -p phone-4t -m peak_rss_mb --json
    """
    from devtrack.trends import trend as trend_of

    ws = open_ws(ctx, workspace_dir)
    result = trend_of(ws, model, profile_name, metric)
    if as_json:
        echo_json(result.to_dict())
    else:
        console().print(_trend_view(result))


def _trend_view(t: Trend) -> Group:
    accuracy = t.metric == "accuracy"
    header, scale = t.metric, 1.0
    if t.metric.endswith("_ms"):  # p50 µs for sub-millisecond models, as everywhere else
        unit, scale = latency_unit([p.value for p in t.points])
        header = f"{t.metric[:-3]} {unit}"
    table = Table(title=Text.assemble(literal(t.model), " · ", literal(t.metric), " on ",
                                      literal(t.profile)), title_justify="left")
    table.add_column("release")
    table.add_column("status")
    table.add_column(header, justify="right")
    table.add_column("change", justify="right")
    table.add_column("", overflow="fold", ratio=1)
    for p in t.points:
        if p.value is None:
            value = "-"
        elif accuracy:
            value = f"{p.value:.4f}"
        else:
            value = format_number(p.value * scale)
        if p.change is None:
            change = ""
        elif accuracy:
            change = f"{p.change * 100:+.2f} pts"
        else:
            change = f"{p.change * 100:+.1f}%"
        mark = Text()
        if p.mark == "regression":
            mark.append("▲ regression", style="bold red")
        elif p.mark == "improvement":
            mark.append("▼ improvement", style="green")
        if p.deployed:
            mark.append(" ★ deployed", style="bold")
        if p.note:
            mark.append(f" {p.note}", style="dim")
        table.add_row(literal(p.version), p.status, value, change, mark)
    threshold = (f"threshold: a drop of {t.threshold:g}" if accuracy
                 else f"threshold: {t.threshold:g}%")
    parts: list[Any] = [table, Text(threshold, style="dim")]
    parts += [Text(f"note: {n}", style="yellow") for n in t.notes]
    return Group(*parts)


COMMANDS = [compare, check, trend]
