"""A deploy from the app is sent to the workspace's alert targets, off the UI thread."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Checkbox, Input, Select

from devtrack.tui.screens.deploy_dialog import DeployDialog
from tests import hook_server

hook = hook_server.hook
Hook = hook_server.Hook
SIZE = (120, 35)


async def test_a_deploy_in_the_app_posts_who_what_where_why(seeded: Path, make_app,
                                                            hook: Hook) -> None:
    (seeded / ".devtrack" / "config.toml").write_text(
        f'[alerts]\nurls = ["{hook.url("json", "app")}"]\non = ["deploy"]\n')
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
        dialog.query_one(Checkbox).value = True
        dialog.query_one(Input).value = "first phone build"
        dialog.query_one(Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
    [post] = hook.requests
    payload = post.json()
    assert payload["title"] == "devtrack deploy: hand-landmark@1.1.0 deployed on phone-4t"
    assert "why: first phone build" in payload["message"]
    assert "where: phone-4t" in payload["message"]
