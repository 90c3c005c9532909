"""Rich renderings shared by commands. User text always goes in as ``Text``: never markup."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from devtrack.cli.plain import first_line, short_time
from devtrack.core.audit import payload_summary
from devtrack.core.release import Release
from devtrack.core.text import printable
from devtrack.core.units import format_number, format_size, latency_unit


def literal(value: Any) -> Text:
    """User-supplied text shown exactly as typed (``[red]`` stays ``[red]``); control
    characters are shown escaped (``\\x1b``), never sent to the terminal."""
    return Text("" if value is None else printable(str(value), keep_newlines=True))


def _kv_table(rows: list[tuple[str | Text, Text | str]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def _shape(shape: list[Any] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def measured_table(measured: list[dict[str, Any]]) -> Table:
    """Per profile: the figures of the run that counts, budgets and deployment."""
    table = Table(title="Measured (the run that counts per profile: the newest ok run under "
                        "its current conditions; devtrack results has all)",
                  title_justify="left")
    unit, scale = latency_unit([m["p90_ms"] for m in measured])
    for name, justify in (("profile", "left"), (f"p50 {unit}", "right"), (f"p90 {unit}", "right"),
                          ("peak MB", "right"), ("accuracy", "right"), ("budgets", "left")):
        table.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=len(name))
    table.add_column("")
    for m in measured:
        accuracy = "-" if m["accuracy"] is None else f"{m['accuracy']:.4f}"
        flags = ("deployed" if m["deployed"] else "") + (
            f" ({m['conditions_note']})" if m["conditions_note"] else "")
        table.add_row(literal(m["profile"]), _ms(_scaled(m["p50_ms"], scale)),
                      _ms(_scaled(m["p90_ms"], scale)),
                      _mb(m["peak_rss_mb"]), accuracy, m["budgets"],
                      Text(flags.strip(), style="green" if m["deployed"] else ""))
    return table


def release_view(rel: Release, measured: list[dict[str, Any]] | None = None) -> Group:
    s = rel.summary
    git = "-"
    if rel.git_commit:
        git = rel.git_commit[:12] + (" (dirty tree)" if rel.git_dirty else "")
    provenance = _kv_table([
        ("release", literal(rel.ref)),
        ("status", rel.status),
        ("artifact", f"{rel.format}, {format_size(rel.size_bytes)}, sha256 {rel.sha256[:16]}…"),
        ("same artifact as", literal(", ".join(rel.same_artifact_as) or "-")),
        ("parent", literal(rel.parent or "-")),
        ("source file", literal(rel.source_name or "-")),
        ("code commit", git),
        ("data version", literal(rel.data_version or "-")),
        ("data sha256", (rel.data_sha256 or "-")[:16]),
        ("run id", literal(rel.run_id or "-")),
        ("tags", literal(", ".join(f"{k}={v}" for k, v in rel.tags.items()) or "-")),
        ("input specs", literal(", ".join(x.to_text() for x in rel.input_specs + rel.fills)
                                or "-")),
        ("created", literal(f"{short_time(rel.created_at)} by {rel.created_by} on {rel.host} "
                            f"(devtrack {rel.devtrack_version})")),
    ])
    model = _kv_table([
        ("params", f"{s.params:,}"),
        ("weights", ", ".join(f"{k} {v:,}" for k, v in s.weight_dtypes.items()) or "-"),
        ("quantization", s.quantization),
        ("opset", literal(s.opset)),
        ("producer", literal(s.producer or "-")),
    ])
    io = Table(title="Inputs and outputs", title_justify="left")
    io.add_column("")
    io.add_column("name")
    io.add_column("shape")
    io.add_column("dtype")
    for kind, tensors in (("in", s.inputs), ("out", s.outputs)):
        for tensor in tensors:
            io.add_row(kind, literal(tensor.name), literal(_shape(tensor.shape)), tensor.dtype)
    ops = Table(title=f"Operators ({sum(s.ops.values())} nodes)", title_justify="left")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    for op, count in sorted(s.ops.items(), key=lambda kv: (-kv[1], kv[0]))[:15]:
        ops.add_row(literal(op), str(count))
    if len(s.ops) > 15:
        ops.add_row(f"… {len(s.ops) - 15} more", "")
    parts: list[Any] = [provenance, Text(""), model, io, ops]
    if measured:
        parts.append(measured_table(measured))
    if rel.config:
        from devtrack.core.diff import flatten_config

        config = _kv_table([(literal(key), literal(json.dumps(value, ensure_ascii=False)
                                          if not isinstance(value, str) else value))
                            for key, value in flatten_config(rel.config).items()])
        parts += [Text("Config", style="bold"), config]
    parts += [Text("Notes", style="bold"), literal(rel.notes or "(none)")]
    return Group(*parts)


def events_table(events: list[dict[str, Any]], title: str, one_model: bool = False) -> Table:
    """One row per event; the reason and the payload share the one column that wraps."""
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("version" if one_model else "release", no_wrap=True)
    table.add_column("why · what", ratio=1)
    for event in events:
        if one_model:
            ref = event["version"] or ""
        else:
            ref = (f"{event['model']}@{event['version']}" if event["version"]
                   else (event["model"] or ""))
        payload = json.loads(event["payload"]) if isinstance(event["payload"], str) else {}
        details = payload_summary(payload)
        if event["kind"] in ("explain", "bisect") and isinstance(payload, dict):
            from devtrack.investigations import investigation_summary

            details = investigation_summary(event["kind"], event["model"], event["version"],
                                            payload)
        what = literal(event["reason"] or "")
        if details:
            if what.plain:
                what.append(" · ")
            detail = literal(first_line(details, 120))
            detail.stylize("dim")
            what.append_text(detail)
        table.add_row(str(event["id"]), short_time(event["ts"]), literal(event["actor"]),
                      event["kind"], literal(ref), what)
    return table


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _ms(value: float | None) -> str:
    return format_number(value)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def accuracy_cell(run: dict[str, Any]) -> str:
    """The headline accuracy figure of an evaluated run ("-" when there is none)."""
    if run.get("task") == "regression":
        return f"MAE {_num(run.get('mae'))}" if run.get("mae") is not None else "-"
    acc = run.get("accuracy")
    return "-" if acc is None else f"{acc:.4f}"


def evaluation_text(run: dict[str, Any]) -> str:
    """Accuracy, fidelity and NaN/Inf of an evaluated run in one line ("" if not evaluated)."""
    if "dataset" not in run:
        return ""
    parts = []
    if run.get("task") == "regression":
        parts.append(f"MAE {_num(run.get('mae'))}, RMSE {_num(run.get('rmse'))}")
    elif run.get("accuracy") is not None:
        text = f"accuracy {run['accuracy']:.4f}"
        ci = run.get("accuracy_ci")
        if ci:
            text += f" (95% CI {ci[0]:.4f}–{ci[1]:.4f})"
        if run.get("top5") is not None:
            text += f", top-5 {run['top5']:.4f}"
        parts.append(text)
    else:
        parts.append("no labels")
    parts[-1] += f" on {run['dataset']} ({run.get('samples_evaluated') or '?'} samples)"
    fid = run.get("fidelity")
    if fid:
        text = (f"fidelity vs {fid.get('reference')}: max abs err "
                f"{_num(fid.get('max_abs_err'), 3)}, mean {_num(fid.get('mean_abs_err'), 3)}, "
                f"cosine {_num(fid.get('cosine'), 6)}")
        if fid.get("top1_agreement") is not None:
            text += f", top-1 agreement {fid['top1_agreement']:.4f}"
        parts.append(text)
    if run.get("nonfinite"):
        parts.append(f"NaN/Inf in {run['nonfinite']} output values")
    return "; ".join(parts)


def runs_table(runs: list[dict[str, Any]], title: str, wide: bool = False,
               one_release: bool = False) -> Group:
    """Runs as a table that fits 80 columns; ``wide`` adds init/first/CV/load columns.

    Errors and warnings go below the table as numbered notes so the figures stay readable;
    evaluated runs get an accuracy column and a line each with accuracy and fidelity.
    """
    one_model = len({run["model"] for run in runs}) == 1
    if one_model and not one_release and runs:
        title = f"{title}: {runs[0]['model']}"

    def release_of(run: dict[str, Any]) -> str:
        return run["version"] if one_model else f"{run['model']}@{run['version']}"

    evaluated = [run for run in runs if "dataset" in run]
    # At 80 columns a release column and an accuracy column leave no room for n (the
    # results command and --json have it).
    show_n = wide or one_release or not evaluated
    table = Table(title=title, title_justify="left")
    columns = [] if one_release else [("version" if one_model else "release", "left")]
    columns += [("profile", "left"), ("status", "left")] + ([("n", "right")] if show_n else [])
    unit, scale = latency_unit([r["p99_ms"] for r in runs])
    columns += [(f"p50 {unit}", "right"), (f"p90 {unit}", "right"), (f"p99 {unit}", "right"),
                ("peak MB", "right")]
    if wide:
        columns += [("init ms", "right"), ("first ms", "right"), ("CV", "right"),
                    ("load Δ MB", "right")]
    if evaluated:
        columns.append(("accuracy", "right"))
    # Identifying columns keep their full width; the figures give way first.
    ident_width = {
        "version": max([7] + [len(release_of(r)) for r in runs]),
        "release": max([7] + [len(release_of(r)) for r in runs]),
        "profile": max([7] + [len(r["profile"]) for r in runs]),
    }
    for name, justify in columns:
        table.add_column(name, justify=justify,  # type: ignore[arg-type]
                         no_wrap=True, min_width=ident_width.get(name))
    notes: list[Text] = []
    for run in runs:
        ok = run["status"] == "ok"
        status = Text(run["status"], style="green" if ok else "red")
        if run.get("counts"):
            status.append(" ✓", style="bold green")
        remarks = [] if ok else [run["error"] or run["status"]]
        remarks += list(run.get("warnings") or [])
        if remarks:
            status.append(f" [{len(notes) + 1}]", style="yellow")
            notes.append(Text(printable(f"[{len(notes) + 1}] run {run['run_id']}: "
                                        + "; ".join(remarks)),
                              style="red" if not ok else "yellow"))
        cells: list[Text | str] = [] if one_release else [literal(release_of(run))]
        cells += [literal(run["profile"]), status]
        if show_n:
            cells.append(str(run["n"] or "-"))
        cells += [_ms(_scaled(run["p50_ms"], scale)), _ms(_scaled(run["p90_ms"], scale)),
                  _ms(_scaled(run["p99_ms"], scale)),
                  _mb(run["peak_rss_mb"])]
        if wide:
            cv = "-" if run.get("cv") is None else f"{run['cv'] * 100:.1f}%"
            cells += [_ms(run["init_ms"]), _ms(run["first_ms"]), cv, _mb(run["load_delta_mb"])]
        if evaluated:
            cells.append(accuracy_cell(run) if "dataset" in run else "-")
        table.add_row(*cells)
    lines = [literal(f"run {run['run_id']} ({run['model']}@{run['version']} on "
                     f"{run['profile']}): {evaluation_text(run)}") for run in evaluated]
    for run in runs:
        ops = (run.get("op_profile") or {}).get("ops") or []
        if ops:
            top = ", ".join(f"{o['op']} {o['pct']:.0f}%" for o in ops[:5])
            lines.append(literal(f"run {run['run_id']} top operators by time: {top}"))
    if any(run.get("counts") for run in runs):
        lines.insert(0, Text("✓ the run that counts on its profile: the newest ok run under "
                             "the profile's current conditions", style="dim"))
    return Group(table, *notes, *lines)
