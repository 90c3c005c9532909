"""explain (why B is slower than A, operator by operator) and bisect (which release did it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from devtrack.cli.alert_cmds import notify_decision, notify_option, notify_plan
from devtrack.cli.common import echo_json, interruptible, json_option, open_ws, workspace_option
from devtrack.core.profile import MAX_REPEATS
from devtrack.core.refs import parse_ref
from devtrack.core.text import printable

if TYPE_CHECKING:
    from devtrack.bisecting import BisectResult
    from devtrack.core.explanation import Explanation

TOP_DEFAULT = 10


def _progress(message: str) -> None:
    click.echo(printable(message), err=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def explanation_lines(e: Explanation, top: int) -> list[str]:
    """The explanation as plain lines: the headline, then the ranked nodes and op types."""
    lines = [f"Explain {e.a} (A) → {e.b} (B) on {e.profile}", "", e.headline, ""]
    if e.source is None:
        lines.append(e.note or "no per-operator times")
    else:
        ratio = (f"; B/A ×{e.ratio:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"
                 if e.ratio is not None and e.ci_low is not None and e.ci_high is not None
                 else "")
        share = e.attributed_share
        lines.append(f"per inference: A {_ms(e.a_ms)} ms, B {_ms(e.b_ms)} ms{ratio} "
                     f"({e.source}); the nodes account for "
                     f"{'-' if share is None else f'{share * 100:.0f}%'} of the change")
        lines += ["", f"{'node':<28} {'op':<16} {'status':<8} {'A ms':>9} {'B ms':>9} "
                      f"{'delta ms':>9} {'share':>6}  details"]
        for c in e.nodes[:top]:
            share_text = "-" if c.share is None else f"{c.share * 100:.0f}%"
            lines.append(f"{c.name[:28]:<28} {c.op[:16]:<16} {c.status:<8} {_ms(c.a_ms):>9} "
                         f"{_ms(c.b_ms):>9} {c.delta_ms:>+9.4f} {share_text:>6}  "
                         f"{'; '.join(c.details)}")
        if len(e.nodes) > top:
            lines.append(f"… {len(e.nodes) - top} more nodes (--top N, or --json for all)")
    if e.ops:
        lines += ["", f"{'op type':<20} {'nodes A→B':>10} {'A ms':>9} {'B ms':>9} "
                      f"{'delta ms':>9} {'share':>6}"]
        for o in e.ops[:top]:
            share_text = "-" if o.share is None else f"{o.share * 100:.0f}%"
            delta = "-" if o.delta_ms is None else f"{o.delta_ms:+.4f}"
            lines.append(f"{o.op[:20]:<20} {f'{o.nodes_a}→{o.nodes_b}':>10} {_ms(o.a_ms):>9} "
                         f"{_ms(o.b_ms):>9} {delta:>9} {share_text:>6}")
    return [printable(line) for line in lines]


@click.command()
@click.argument("ref_a", metavar="MODEL@A")
@click.argument("ref_b", metavar="MODEL@B")
@click.option("--profile", "-p", "profile_name", required=True, metavar="NAME",
              help="Device profile to measure on (its threads, graph optimisation, timeout).")
@click.option("--repeats", type=click.IntRange(2, MAX_REPEATS), default=4, show_default=True,
              metavar="N", help="Side-by-side repeats (even: the order alternates).")
@click.option("--top", type=click.IntRange(1, 10_000), default=TOP_DEFAULT, show_default=True,
              metavar="N", help="Nodes and op types shown (--json has all).")
@click.option("--op-log", "op_logs", multiple=True, metavar="A=LOG|B=LOG",
              help="A benchmark_model log with op tables (--enable_op_profiling=true) for A "
                   "or B; give both. TFLite only.")
@workspace_option
@json_option
@click.pass_context
@interruptible
def explain(ctx: click.Context, ref_a: str, ref_b: str, profile_name: str, repeats: int,
            top: int, op_logs: tuple[str, ...], workspace_dir: Path | None,
            as_json: bool) -> None:
    """Why is B slower (or faster) than A? Per-operator times, side by side.

    Both releases run in one isolated worker with onnxruntime's profiler on, in alternating
    blocks, so drift cannot pass for an operator's regression. Nodes are matched by name,
    then by op type and position; each gets A's and B's time per inference, the delta, its
    share of the total change and whether it was added, removed or changed (shape, dtype,
    quantization). The first line ties it to what changed between the releases. TFLite
    releases are explained from benchmark_model op profiles: two logs (--op-log), the phone
    of an adb:// profile (whole runs alternated A B B A), or the stored op profiles of the
    runs that count; with none of these, from the structure alone, saying so.
    A measurement is stored with an `explain` event (devtrack log, history).

    \b
    Examples:
      devtrack explain kws@1.0.0 kws@1.1.0 --profile ci-host
      devtrack explain kws@1.0.0 kws@1.1.0 -p ci-host --top 5
      devtrack explain kws@1.0.0 kws@1.1.0 -p ci-host --json
      devtrack explain kws@1.0.0 kws@1.1.0 -p pixel8 --op-log A=a.log --op-log B=b.log
    """
    from devtrack.explaining import ExplainSettings, explain_releases

    settings = ExplainSettings(repeats=repeats)
    a, b = parse_ref(ref_a), parse_ref(ref_b)
    logs = _op_logs(op_logs)
    ws = open_ws(ctx, workspace_dir)
    result = explain_releases(ws, str(a), str(b), profile_name, settings,
                              progress=None if as_json else _progress, op_logs=logs)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo("\n".join(explanation_lines(result, top)))


def _op_logs(values: tuple[str, ...]) -> tuple[Path, Path] | None:
    """``("A=a.log", "B=b.log")`` as (A's path, B's path); None when none is given."""
    from devtrack.errors import UsageError

    if not values:
        return None
    found: dict[str, Path] = {}
    for value in values:
        side, sep, path = value.partition("=")
        side = side.strip().upper()
        if not sep or side not in ("A", "B") or not path:
            raise UsageError(f"--op-log {printable(value)[:80]!r}: expected A=LOG or B=LOG")
        if side in found:
            raise UsageError(f"--op-log {side}= is given twice")
        found[side] = Path(path)
    if set(found) != {"A", "B"}:
        missing = ({"A", "B"} - set(found)).pop()
        raise UsageError(f"--op-log needs a log for both releases: add --op-log {missing}=LOG")
    return found["A"], found["B"]


def bisect_lines(r: BisectResult, top: int) -> list[str]:
    """The bisect's answer: each step, the skipped releases, the first bad and why."""
    lines = [f"Bisect {r.good} (good) … {r.bad} (bad) on {r.profile}, {r.path_kind}, "
             f"threshold {r.threshold_pct:g}%", ""]
    for s in r.steps:
        if s.ratio is not None:
            lines.append(f"  {s.ref:<30} ×{s.ratio:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]  "
                         f"{s.verdict}")
        else:
            lines.append(f"  {s.ref:<30} skipped: {s.reason}")
    lines.append("")
    if r.first_bad is None:
        lines.append(r.note or "no release passes the threshold")
    else:
        maybe = (f" (or one of the skipped {', '.join(r.candidates)})" if r.candidates else "")
        lines.append(f"first bad: {r.first_bad}{maybe}; last good: {r.last_good}; "
                     f"{r.measurements} side-by-side measurements")
    if r.event_id is not None:
        model = r.good.rpartition("@")[0]
        lines.append(f"recorded as event {r.event_id} (devtrack history {model}; "
                     f"devtrack log {model} --kind bisect --json)")
    if r.explanation is not None:
        lines += ["", *explanation_lines(r.explanation, top)]
    elif r.explain_error:
        lines.append(f"explain failed: {r.explain_error}")
    return [printable(line) for line in lines]


@click.command()
@click.argument("model", metavar="MODEL")
@click.option("--good", required=True, metavar="VERSION", help="A release known to be fast.")
@click.option("--bad", required=True, metavar="VERSION", help="A later release that is slow.")
@click.option("--profile", "-p", "profile_name", required=True, metavar="NAME",
              help="Device profile to measure on; its max_latency_regression_pct decides.")
@click.option("--no-explain", is_flag=True, help="Stop at the first bad release.")
@click.option("--top", type=click.IntRange(1, 10_000), default=TOP_DEFAULT, show_default=True,
              metavar="N", help="Nodes shown in the explanation (--json has all).")
@notify_option
@workspace_option
@json_option
@click.pass_context
@interruptible
def bisect(ctx: click.Context, model: str, good: str, bad: str, profile_name: str,
           no_explain: bool, top: int, notify_urls: tuple[str, ...],
           workspace_dir: Path | None, as_json: bool) -> None:
    """Find the first release between --good and --bad that made MODEL slower.

    The releases in between are taken along --bad's parent chain back to --good (creation
    order when there is no chain). Each step measures a release side by side with --good in
    one worker; it is bad when the slowdown is significant and beyond the profile's
    max_latency_regression_pct (default 5%). --bad is measured first, then the path is
    halved. A release the profile cannot run (format, failed measurement) is skipped and
    reported, like `git bisect skip`. The first bad release is then explained against the
    last good one. The plan and progress go to stderr. Every measurement and the answer are
    recorded by one `bisect` event (devtrack history MODEL); a stopped bisect stores nothing.

    \b
    Examples:
      devtrack bisect kws --good 1.0.0 --bad 1.4.0 --profile ci-host
      devtrack bisect kws --good 1.0.0 --bad 1.4.0 -p ci-host --no-explain
      devtrack bisect kws --good 1.0.0 --bad 1.4.0 -p ci-host --json
      devtrack bisect kws --good 1.0.0 --bad 1.4.0 -p ci-host --notify "$SLACK_URL"

    The answer (a first bad release is a regression) is sent, as one message, to --notify
    URLs and the [alerts] targets.
    """
    from devtrack.bisecting import bisect_releases
    from devtrack.notify import notify_bisect

    alerts = notify_plan(ctx, workspace_dir, notify_urls)
    ws = open_ws(ctx, workspace_dir)
    result = bisect_releases(ws, model, good, bad, profile_name, explain=not no_explain,
                             progress=_progress)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo("\n".join(bisect_lines(result, top)))
    notify_decision(lambda: notify_bisect(ws, alerts, result))
