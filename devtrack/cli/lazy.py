"""A click group that imports a command's module only when that command runs.

``devtrack --help`` then loads click alone, and ``devtrack releases`` loads only what listing
releases needs; tests/test_cli_help.py checks the table below against the real commands.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute, one-line help shown by ``devtrack --help``)
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("registry_cmds", "init", "Create a workspace (.devtrack/ with the database and "
             "artifact store) in DIRECTORY."),
    "info": ("info_cmds", "info", "Show where the database and the artifacts of this "
             "workspace are (passwords masked), the database's schema version and devtrack's "
             "version."),
    "register": ("registry_cmds", "register",
                 "Register FILE (.onnx or .tflite) as MODEL@VERSION with its provenance."),
    "models": ("registry_cmds", "models", "List the model lines in the workspace."),
    "releases": ("registry_cmds", "releases", "List releases, of every model or of MODEL."),
    "show": ("registry_cmds", "show",
             "Show one release: provenance, model summary, notes and the figures that count."),
    "log": ("registry_cmds", "log_cmd",
            "Show the audit trail (every change, hash-chained), of every model or of MODEL."),
    "profiles": ("bench_cmds", "profiles", "List and validate device profiles (the "
                 "workspace's own, then the shipped ones)."),
    "bench": ("bench_cmds", "bench", "Measure latency and memory of releases on device "
              "profiles, each in a fresh process."),
    "results": ("bench_cmds", "results", "Show the stored benchmark runs of a release, or "
                "import a benchmark_model log."),
    "dataset": ("dataset_cmds", "dataset", "Evaluation datasets: .npz files that bench runs "
                "releases on for accuracy and fidelity."),
    "compare": ("review_cmds", "compare", "Compare release B with release A: what changed, "
                "and every metric with a verdict."),
    "check": ("review_cmds", "check",
              "Gate a release: every budget and regression limit on each profile."),
    "trend": ("review_cmds", "trend",
              "Show one metric across a model's releases in order, marking regressions."),
    "explain": ("explain_cmds", "explain", "Why is B slower (or faster) than A? Per-operator "
                "times, side by side."),
    "bisect": ("explain_cmds", "bisect",
               "Find the first release between --good and --bad that made MODEL slower."),
    "promote": ("lifecycle_cmds", "promote",
                "Change a release's status: approve, reject or yank it, with a reason."),
    "notes": ("lifecycle_cmds", "notes", "Replace a release's notes (a deployment needs "
              "them); the old text stays in the log."),
    "deploy": ("lifecycle_cmds", "deploy", "Make a release the live one on a device profile."),
    "history": ("lifecycle_cmds", "history",
                "Show who deployed what, where, when and why, and what it replaced."),
    "rollback": ("lifecycle_cmds", "rollback", "Go back to an earlier release on a profile, "
                 "and say why the others were passed over."),
    "audit": ("lifecycle_cmds", "audit", "Check the audit trail."),
    "export": ("bundle_cmds", "export", "Write releases with their runs, evaluations and "
               "provenance to a bundle (.zip) another workspace can import."),
    "import": ("bundle_cmds", "import_cmd", "Add a bundle made by 'devtrack export' to this "
               "workspace, verified and idempotent."),
    "db": ("db_cmds", "db", "The workspace's database: copy it to a PostgreSQL server."),
    "gc": ("gc_cmds", "gc",
           "Remove leftovers of interrupted writes that no live devtrack process owns."),
    "alerts": ("alert_cmds", "alerts", "Alerts: where devtrack sends notifications, and a "
               "test message to check the setup."),
    "lab": ("lab_cmds", "lab", "The device lab: profiles with their targets, whether each "
            "device answers, who holds it; 'lab check' says what a device lacks."),
    "demo": ("demo_cmds", "demo",
             "Build a demo workspace in DIRECTORY (default ./devtrack-demo) and open it."),
    "tui": ("tui_cmds", "tui", "Open the release-review app (also what devtrack alone does)."),
}


class LazyGroup(click.Group):
    """Commands listed in :data:`LAZY_COMMANDS` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module_name, attr, _ = LAZY_COMMANDS[cmd_name]
            module = importlib.import_module(f"devtrack.cli.{module_name}")
            self.add_command(getattr(module, attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, with a did-you-mean for a mistyped command name."""
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
            else:
                rows.append((name, LAZY_COMMANDS[name][2]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
