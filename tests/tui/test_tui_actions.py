"""Review actions through their dialogs: each needs a reason and calls the lifecycle library."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Select, Static
from tui_seed import plain

from devtrack.lifecycle import current_deployment, history
from devtrack.registry import get_release
from devtrack.tui.screens.deploy_dialog import DeployDialog
from devtrack.tui.screens.releases import ReleasesScreen
from devtrack.tui.screens.rollback_dialog import RollbackDialog
from devtrack.tui.screens.status_dialog import StatusDialog
from devtrack.tui.widgets.nav_table import NavTable
from devtrack.workspace import open_workspace

SIZE = (120, 35)


def status_of(root: Path, ref: str) -> str:
    with open_workspace(root) as ws:
        return get_release(ws, ref).status


def error_text(dialog: object) -> str:
    parts = []
    for widget in dialog.query("#dialog-error, .reason-error"):  # type: ignore[attr-defined]
        if widget.display:
            parts.append(plain(widget.content))
    return " ".join(parts)


@pytest.mark.both_backends
async def test_approve_refuses_an_empty_reason_then_records_it(seeded: Path,
                                                                make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "j", "a")  # 1.3.0, a candidate
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, StatusDialog) and dialog.target == "approved"
        await pilot.press("enter")  # empty reason
        await pilot.pause()
        assert app.screen is dialog
        assert "reason is required" in error_text(dialog)
        await pilot.press(*"   ", "enter")  # blanks are not a reason either
        assert app.screen is dialog
        assert status_of(seeded, "hand-landmark@1.3.0") == "candidate"
        dialog.query_one(Input).value = "accuracy up, latency [b]ok[/b] on device"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        assert app.screen.current_row.status == "approved"  # the table reloaded
    assert status_of(seeded, "hand-landmark@1.3.0") == "approved"
    with open_workspace(seeded) as ws:
        event = ws.store.events(model="hand-landmark", kind="promote")[-1]
    assert event["reason"] == "accuracy up, latency [b]ok[/b] on device"
    assert event["version"] == "1.3.0"


async def test_reject_and_yank_and_esc_cancels(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "j", "j", "x")  # 1.4.0
        await pilot.pause()
        assert isinstance(app.screen, StatusDialog)
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)
        assert status_of(seeded, "hand-landmark@1.4.0") == "candidate"
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one(Input).value = "crashes on ci-host"
        await pilot.press("enter")
        await pilot.pause()
        assert status_of(seeded, "hand-landmark@1.4.0") == "rejected"
        await pilot.press("y")
        await pilot.pause()
        assert app.screen.target == "yanked"
        app.screen.query_one(Input).value = "crash confirmed"
        await pilot.press("enter")
        await pilot.pause()
        assert status_of(seeded, "hand-landmark@1.4.0") == "yanked"
        await pilot.press("a")  # a yanked release cannot change any more: no dialog
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        assert any("nothing (final)" in str(n.message) for n in app._notifications)


async def test_a_library_refusal_stays_in_the_dialog(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("d")  # 1.0.0 on ci-host: it has no passing check there
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DeployDialog) and dialog.profile == "ci-host"
        live = plain(dialog.query_one("#live-note", Static).content)
        assert "hand-landmark@1.1.0" in live
        await pilot.press("enter")
        assert "reason is required" in error_text(dialog)
        await pilot.press(*"roll forward", "enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "no check on ci-host" in error_text(dialog)
        assert dialog.query_one(Input).value == "roll forward"  # the reason is kept
        dialog.query_one(Checkbox).value = True
        await pilot.click("#ok")
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
    with open_workspace(seeded) as ws:
        live_now = current_deployment(ws, "hand-landmark", "ci-host")
        assert live_now is not None and live_now.version == "1.0.0" and live_now.forced
        assert live_now.reason == "roll forward" and live_now.replaced == "1.1.0"


@pytest.mark.both_backends
async def test_deploy_to_another_profile_from_the_detail_screen(seeded: Path,
                                                                 make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "enter")  # 1.1.0
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DeployDialog)
        dialog.query_one(Select).value = "phone-4t"
        await pilot.pause()
        assert "Nothing of hand-landmark is deployed on phone-4t" in plain(
            dialog.query_one("#live-note", Static).content)
        dialog.query_one(Checkbox).value = True
        dialog.query_one(Input).value = "first phone build"
        dialog.query_one(Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "ReleaseDetailScreen"
    with open_workspace(seeded) as ws:
        assert current_deployment(ws, "hand-landmark", "phone-4t").version == "1.1.0"


@pytest.mark.both_backends
async def test_rollback_shows_candidates_with_reasons_and_needs_a_reason(seeded: Path,
                                                                         make_app) -> None:
    app = make_app(seeded, profile="big-core-1t")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RollbackDialog) and dialog.profile == "big-core-1t"
        plan = dialog.view.plan
        assert plan.current == "1.1.0" and plan.target == "1.0.0"
        table = dialog.query_one(NavTable)
        rows = {row.key: plain(row.render()[3]) for row in table.all_rows}
        assert rows["1.0.0"] == "qualifies"
        assert "current deployment" in rows["1.1.0"]
        assert "newer than the current deployment" in rows["1.3.0"]
        summary = plain(dialog.query_one("#plan-summary", Static).content)
        assert "Proposed: 1.0.0" in summary
        await pilot.press("enter")
        assert "reason is required" in error_text(dialog)
        dialog.query_one(Input).value = "1.1.0 drains the battery"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        assert app.screen.table_data.rows[0].deployed_on == ("big-core-1t",)
    with open_workspace(seeded) as ws:
        last = history(ws, "hand-landmark", "big-core-1t")[-1]
        assert (last.kind, last.version, last.reason) == (
            "rollback", "1.0.0", "1.1.0 drains the battery")


async def test_rollback_with_nothing_deployed_says_so(seeded: Path, make_app) -> None:
    with open_workspace(seeded) as ws:
        ws.store.execute("UPDATE deployments SET ended_at = '2024-06-01T00:00:00Z' "
                         "WHERE model_id = (SELECT id FROM models WHERE name = 'kws')")
    app = make_app(seeded, model="kws")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        assert any("not deployed on any profile" in str(n.message)
                   for n in app._notifications)


async def test_a_key_for_the_status_a_release_has_opens_no_dialog(seeded: Path,
                                                                 make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("a")  # 1.0.0 is already approved
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        await pilot.press("j", "j", "x")  # 1.2.0 is already rejected
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        messages = [str(n.message) for n in app._notifications]
        assert any("already approved" in m for m in messages)
        assert any("already rejected" in m for m in messages)
    assert status_of(seeded, "hand-landmark@1.0.0") == "approved"
    assert status_of(seeded, "hand-landmark@1.2.0") == "rejected"


async def test_deploy_dialog_cancel_button_returns_to_the_releases(seeded: Path,
                                                                   make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "d")
        await pilot.pause()
        assert isinstance(app.screen, DeployDialog)
        await pilot.click("#cancel")
        await pilot.pause()
        assert isinstance(app.screen, ReleasesScreen)
        assert app.screen.current_row is not None
