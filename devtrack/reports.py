"""Reports for CI and pull requests: JUnit XML and Markdown of checks and comparisons."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from devtrack.comparison import Comparison
from devtrack.core.budgets import FAIL, PASS
from devtrack.core.diff import show_value
from devtrack.core.units import format_size
from devtrack.errors import UsageError
from devtrack.gate import NOT_MEASURED, SKIPPED, CheckReport
from devtrack.metric_changes import MetricDelta

STEP_SUMMARY_VAR = "GITHUB_STEP_SUMMARY"
_MARK = {PASS: "✅ pass", FAIL: "❌ fail", SKIPPED: "➖ skipped", NOT_MEASURED: "❔ not measured"}


# --- writing ------------------------------------------------------------------------------

def check_writable(path: Path, option: str) -> None:
    """Refuse a report path that cannot be written, before anything is measured or stored."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: folder {parent} does not exist; create it first")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: folder {parent} is not writable")
    try:  # the real test: some folders (e.g. under /proc) pass os.access and still refuse
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in {parent} ({exc.strerror})") from None


def check_step_summary() -> None:
    """Refuse an unusable ``$GITHUB_STEP_SUMMARY`` before anything is measured or stored."""
    target = os.environ.get(STEP_SUMMARY_VAR)
    if not target:
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"${STEP_SUMMARY_VAR}={target} is a folder; it must name a file")
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"${STEP_SUMMARY_VAR}={target} cannot be appended to "
                         f"({exc.strerror})") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_step_summary(markdown: str) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the file written."""
    target = os.environ.get(STEP_SUMMARY_VAR)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as out:
        out.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


# --- JUnit --------------------------------------------------------------------------------

def check_junit(report: CheckReport) -> str:
    """JUnit XML: one test suite per profile, one test case per check, figures in failures.

    A check that could not be judged (no run under the profile's current conditions) is an
    ``<error type="not_measured">``, not a failure: CI shows it red, apart from breaches.
    """
    suites = ET.Element("testsuites", name=f"devtrack check {report.candidate}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for profile in report.profiles:
        items = profile.items
        failures = sum(1 for i in items if i.failed)
        errors = sum(1 for i in items if i.status == NOT_MEASURED)
        skipped = sum(1 for i in items if i.status == SKIPPED)
        suite = ET.SubElement(suites, "testsuite", name=f"{report.candidate} on {profile.profile}",
                              tests=str(max(1, len(items))), failures=str(failures),
                              errors=str(errors), skipped=str(skipped if items else 1))
        props = ET.SubElement(suite, "properties")
        for key, value in (("profile_hash", profile.profile_hash),
                           ("conditions_hash", profile.conditions_hash),
                           ("status", profile.status),
                           ("measure_with", profile.measure_with or ""),
                           ("baseline", profile.baseline or ""),
                           ("baseline_source", profile.baseline_source or ""),
                           ("check_id", str(profile.check_id or ""))):
            ET.SubElement(props, "property", name=key, value=value)
        classname = f"devtrack.check.{profile.profile}"
        for item in items:
            case = ET.SubElement(suite, "testcase", classname=classname, name=item.name,
                                 time="0")
            if item.failed:
                failure = ET.SubElement(case, "failure", message=item.message, type=item.name)
                failure.text = item.message
            elif item.status == NOT_MEASURED:
                error = ET.SubElement(case, "error", message=item.message, type=NOT_MEASURED)
                error.text = item.message
            elif item.status == SKIPPED:
                ET.SubElement(case, "skipped", message=item.message)
            else:
                ET.SubElement(case, "system-out").text = item.message
        if not items:
            empty = ET.SubElement(suite, "testcase", classname=classname, name="checks",
                                  time="0")
            ET.SubElement(empty, "skipped", message="the profile sets no budgets or limits")
        totals["tests"] += max(1, len(items))
        totals["failures"] += failures
        totals["errors"] += errors
        totals["skipped"] += skipped if items else 1
    for key, total in totals.items():
        suites.set(key, str(total))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


# --- Markdown -----------------------------------------------------------------------------

def md(text: Any) -> str:
    """``text`` safe inside a Markdown table cell: no pipes, newlines or raw HTML."""
    value = "" if text is None else str(text)
    return (value.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;").replace("\r", " ").replace("\n", " "))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def check_markdown(report: CheckReport) -> str:
    """A Markdown summary of a check, fit for a pull request or a CI step summary."""
    verdict = {PASS: "✅ passed", FAIL: "❌ failed", NOT_MEASURED: "❔ not measured"}[
        report.status]
    lines = [f"### devtrack check `{md(report.candidate)}`: {verdict}", ""]
    rows = []
    for p in report.profiles:
        for item in p.items:
            rows.append([md(p.profile), f"`{md(item.name)}`", _MARK.get(item.status, item.status),
                         md(item.message)])
        if not p.items:
            rows.append([md(p.profile), "-", _MARK[SKIPPED], "the profile sets no budgets"])
    lines += _table(["profile", "check", "result", "details"], rows)
    notes = []
    for p in report.profiles:
        if p.measure_with:
            notes.append(f"{md(p.profile)}: not measured under its current conditions; "
                         f"measure with `{md(p.measure_with)}` (or `check --bench`)")
        if p.baseline:
            notes.append(f"{md(p.profile)}: baseline `{md(p.baseline)}` ({p.baseline_source})")
        notes += [f"{md(p.profile)}: {md(n)}" for n in dict.fromkeys(p.notes)]
    notes += [md(n) for n in report.notes]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def delta_text(delta: MetricDelta, unit: str) -> str:
    if delta.abs is None:
        return "-"
    rel = f" ({delta.rel * 100:+.1f}%)" if delta.rel is not None else ""
    return f"{delta.abs:+.2f} {unit}{rel}"


def comparison_markdown(c: Comparison) -> str:
    """A Markdown report of :func:`compare_releases`."""
    d = c.diff
    lines = [f"### devtrack compare `{md(c.a.ref)}` → `{md(c.b.ref)}`", ""]
    if d.same_artifact:
        lines += ["Same artifact: both releases have identical bytes.", ""]
    rel = f" ({d.size_rel * 100:+.1f}%)" if d.size_rel is not None else ""
    rows = [[md(f.name), md(show_value(f.a)), md(show_value(f.b))] for f in d.changed_fields]
    rows.append(["size", format_size(d.size_a), f"{format_size(d.size_b)}, "
                 f"{d.size_abs:+,} bytes{rel}"])
    lines += ["**What changed**", "", *_table(["field", "A", "B"], rows)]
    config = d.config
    changes = ([f"config added {md(k)} = {md(show_value(v))}" for k, v in config.added.items()]
               + [f"config removed {md(k)} (was {md(show_value(v))})"
                  for k, v in config.removed.items()]
               + [f"config changed {md(k)}: {md(show_value(a))} → {md(show_value(b))}"
                  for k, (a, b) in config.changed.items()])
    ops = d.ops
    changes += ([f"op {md(k)} added (×{v})" for k, v in ops.added.items()]
                + [f"op {md(k)} removed (×{v})" for k, v in ops.removed.items()]
                + [f"op {md(k)}: {a} → {b}" for k, (a, b) in ops.changed.items()])
    if changes:
        lines += [""] + [f"- {x}" for x in changes]
    rows = []
    for p in c.profiles:
        name = md(p.profile)
        if p.latency:
            lat = p.latency
            label = "p50 latency" + (" (interleaved)" if lat.method == "interleaved"
                                     else " (stored runs, indicative)")
            rows.append([name, label, _ms(lat.a_ms), _ms(lat.b_ms),
                         f"{lat.pct:+.1f}% (95% CI {(lat.ci_low - 1) * 100:+.1f}% to "
                         f"{(lat.ci_high - 1) * 100:+.1f}%)", f"**{lat.verdict}**"])
        for m in p.memory:
            unit = "ms" if m.metric.endswith("_ms") else "MB"
            rows.append([name, m.metric, _mb(m.a), _mb(m.b), delta_text(m, unit), ""])
        if p.accuracy:
            acc = p.accuracy
            rows.append([name, f"accuracy ({md(acc.dataset)})", f"{acc.a:.4f}", f"{acc.b:.4f}",
                         f"{acc.diff * 100:+.2f} pts (95% CI {acc.ci_low * 100:+.2f} to "
                         f"{acc.ci_high * 100:+.2f}, {acc.method})", ""])
        for op in p.ops:
            rows.append([name, f"op {md(op.op)}", _ms(op.a_ms), _ms(op.b_ms),
                         f"{op.b_ms - op.a_ms:+.3f} ms", ""])
    if rows:
        lines += ["", "**Measured**", ""]
        lines += _table(["profile", "metric", "A", "B", "change", "verdict"], rows)
    notes = [f"{md(k)}: {md(v)}" for k, v in c.not_comparable.items()]
    notes += [f"{md(p.profile)}: {md(n)}" for p in c.profiles for n in p.notes]
    notes += [md(n) for n in c.notes]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

