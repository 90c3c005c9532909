"""Review actions shared by the releases and detail screens: each opens a dialog, then
calls the same library function as the CLI (``promote``, ``deploy``, ``rollback``, bench)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.binding import Binding

from devtrack.errors import DevtrackError

if TYPE_CHECKING:
    from devtrack.tui.app import DevtrackApp
    from devtrack.tui.screens.deploy_dialog import DeployRequest
    from devtrack.tui.screens.rollback_dialog import PlanView, RollbackRequest
    from devtrack.tui.screens.status_dialog import StatusRequest


@dataclass(frozen=True)
class Target:
    """The release an action applies to, and the profile in view."""

    model: str
    version: str
    format: str
    profile: str | None
    status: str

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


class ReviewActions:
    """Mixin for a Screen: ``review_target()`` names the release; the actions do the rest."""

    ACTION_BINDINGS = (
        Binding("a", "set_status('approved')", "Approve",
                tooltip="Approve the release (asks for a reason)"),
        Binding("x", "set_status('rejected')", "Reject", show=False,
                tooltip="Reject the release (asks for a reason)"),
        Binding("y", "set_status('yanked')", "Yank", show=False,
                tooltip="Yank the release for good (asks for a reason)"),
        Binding("d", "deploy", "Deploy", tooltip="Deploy the release to a profile (asks for "
                "a reason)"),
        Binding("u", "rollback", "Roll back", show=False,
                tooltip="Roll the model back on a profile: candidates with reasons"),
        Binding("b", "bench", "Bench", tooltip="Benchmark the release on chosen profiles, "
                "in the background"),
        Binding("ctrl+x", "cancel_bench", "Cancel bench", show=False,
                tooltip="Stop the running benchmark (the run is kept as aborted) or bisect "
                "(nothing kept)"),
    )

    app: Any
    notify: Any

    def review_target(self) -> Target | None:
        raise NotImplementedError

    @property
    def _app(self) -> DevtrackApp:
        return self.app

    def _target_or_warn(self) -> Target | None:
        target = self.review_target()
        if target is None:
            self.notify("Select a release first.", severity="warning")
        return target

    # -- status -------------------------------------------------------------------------------

    def action_set_status(self, to: str) -> None:
        from devtrack.lifecycle import TRANSITIONS, promote
        from devtrack.tui.screens.status_dialog import StatusDialog

        target = self._target_or_warn()
        if target is None:
            return
        allowed = TRANSITIONS.get(target.status, ())
        if to not in allowed:
            # Never open the dialog on another status than the key asked for: "a" on an
            # approved release once offered Reject, and Enter rejected a live release.
            why = (f"{target.ref} is already {to}" if target.status == to else
                   f"{target.ref} is {target.status}; it cannot become {to}")
            options = ", ".join(allowed) or "nothing (final)"
            self.notify(f"{why}. Allowed from {target.status}: {options}.", markup=False,
                        severity="warning")
            return
        ws = self._app.ws

        def perform(request: StatusRequest) -> Any:
            return promote(ws, request.ref, request.to, request.reason)

        def done(result: Any) -> None:
            if result is None:
                return
            message = f"{result.release}: {result.previous} → {result.status}"
            if result.still_deployed_on:
                message += (f". Still deployed on {', '.join(result.still_deployed_on)}: "
                            "roll back there (u).")
            self.notify(message, severity="warning" if result.still_deployed_on
                        else "information", markup=False)
            self._app.data_changed("status", result.release)

        self._app.push_screen(StatusDialog(target.ref, target.status,
                                           TRANSITIONS.get(target.status, ()), to, perform),
                              done)

    # -- deploy -------------------------------------------------------------------------------

    def _profiles_for(self, fmt: str) -> tuple[list[str], list[str]]:
        from devtrack.profiles import list_profiles

        runs, skipped = [], []
        for entry in list_profiles(self._app.ws.root):
            if entry.profile is None:
                skipped.append(f"{entry.name} (invalid)")
            elif entry.profile.runs_format(fmt):
                runs.append(entry.name)
            else:
                skipped.append(f"{entry.name} (no {fmt})")
        return runs, skipped

    def action_deploy(self) -> None:
        from devtrack.lifecycle import current_deployment, deploy
        from devtrack.tui.screens.deploy_dialog import DeployDialog

        target = self._target_or_warn()
        if target is None:
            return
        ws = self._app.ws
        profiles, _ = self._profiles_for(target.format)

        def live(profile: str) -> str:
            now = current_deployment(ws, target.model, profile)
            if now is None:
                return f"Nothing of {target.model} is deployed on {profile} yet."
            return (f"Live on {profile} now: {now.ref} since {now.deployed_at[:16]} "
                    f"({now.kind} by {now.deployed_by}).")

        def perform(request: DeployRequest) -> Any:
            return deploy(ws, request.ref, request.profile, request.reason, force=request.force)

        def done(result: Any) -> None:
            if result is None:
                return
            message = f"Deployed {result.ref} on {result.profile}"
            if result.replaced:
                message += f" (replacing {result.replaced})"
            if result.forced:
                message += "; forced without a passing check (recorded)"
            self.notify(message, markup=False,
                        severity="warning" if result.forced else "information")
            self._app.data_changed("deploy", result.ref)
            self._alert(result)

        self._app.push_screen(
            DeployDialog(target.ref, profiles, target.profile, live, perform, self._app.root,
                         after_check=lambda: self._app.data_changed("check", target.ref)),
            done)

    def _alert(self, deployment: Any) -> None:
        """Send a deploy or rollback to the configured alert targets, off the UI thread (a
        target may take its whole timeout); a failure shows as a warning, nothing more."""
        from devtrack.notify import notify_deployment_in

        root = self._app.ws.root

        def send() -> None:
            for line in notify_deployment_in(root, deployment):
                self._app.call_from_thread(self.notify, line, severity="warning",
                                           markup=False)

        self._app.run_worker(send, thread=True, group="alerts", exit_on_error=False)

    # -- rollback -----------------------------------------------------------------------------

    def rollback_model(self) -> tuple[str, str | None] | None:
        target = self.review_target()
        return (target.model, target.profile) if target is not None else None

    def action_rollback(self) -> None:
        from devtrack.lifecycle import current_deployments, rollback
        from devtrack.tui.screens.rollback_dialog import PlanView, RollbackDialog

        chosen = self.rollback_model()
        if chosen is None:
            self.notify("Select a model first.", severity="warning")
            return
        model, profile = chosen
        ws = self._app.ws
        deployed_on = sorted(current_deployments(ws, model))
        if not deployed_on:
            self.notify(f"{model} is not deployed on any profile: nothing to roll back.",
                        severity="warning", markup=False)
            return

        def plan_for(name: str) -> PlanView:
            try:
                return PlanView(rollback(ws, model, name, None, dry_run=True).plan)
            except DevtrackError as exc:
                plan = getattr(exc, "plan", None)
                return PlanView(plan, None if plan is not None else str(exc))

        def perform(request: RollbackRequest) -> Any:
            return rollback(ws, request.model, request.profile, request.reason, to=request.to)

        def done(result: Any) -> None:
            if result is None or result.deployment is None:
                return
            d = result.deployment
            self.notify(f"Rolled back {model} on {d.profile}: {result.plan.current} → "
                        f"{d.version}", markup=False)
            self._app.data_changed("rollback", d.ref)
            self._alert(d)

        initial = profile if profile in deployed_on else deployed_on[0]
        self._app.push_screen(RollbackDialog(model, deployed_on, initial, plan_for, perform),
                              done)

    # -- bench --------------------------------------------------------------------------------

    def action_bench(self) -> None:
        from devtrack.profiles import list_profiles
        from devtrack.tui.screens.bench_dialog import BenchDialog

        target = self._target_or_warn()
        if target is None:
            return
        if self._app.bench_running:
            self.notify("A benchmark is already running (ctrl+x cancels it).",
                        severity="warning")
            return
        offered, skipped = [], []
        for entry in list_profiles(self._app.ws.root):
            if entry.profile is None:
                skipped.append(f"{entry.name} (invalid)")
            elif not entry.profile.runs_format(target.format):
                skipped.append(f"{entry.name} (no {target.format})")
            else:
                offered.append((entry.name, entry.profile.description))

        def done(names: list[str] | None) -> None:
            if names:
                self._app.start_bench(target.ref, names)

        self._app.push_screen(BenchDialog(target.ref, offered, target.profile, skipped), done)

    def action_cancel_bench(self) -> None:
        self._app.cancel_bench()

    def review_palette_commands(self) -> Iterable[SystemCommand]:
        target = self.review_target()
        if target is None:
            return
        ref = target.ref
        yield SystemCommand(f"Approve {ref}", "Change its status, with a reason (a)",
                            lambda: self.action_set_status("approved"))
        yield SystemCommand(f"Reject {ref}", "Change its status, with a reason (x)",
                            lambda: self.action_set_status("rejected"))
        yield SystemCommand(f"Yank {ref}", "Withdraw it for good, with a reason (y)",
                            lambda: self.action_set_status("yanked"))
        yield SystemCommand(f"Deploy {ref}", "To a device profile, with a reason (d)",
                            self.action_deploy)
        yield SystemCommand(f"Roll back {target.model}", "Show the candidates and go back (u)",
                            self.action_rollback)
        yield SystemCommand(f"Benchmark {ref}", "On chosen profiles, in the background (b)",
                            self.action_bench)
        if self._app.bench_running:
            yield SystemCommand("Cancel the running benchmark", "ctrl+x",
                                self.action_cancel_bench)
