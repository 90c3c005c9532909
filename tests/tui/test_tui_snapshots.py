"""What the main screens look like at 80×24 and 120×35 (SVG snapshots, fixed seeded data).

After an intended change of the layout, look at the report pytest writes on failure, then
accept the new pictures with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

SIZES = {"80x24": (80, 24), "120x35": (120, 35)}


def keys(*presses: str) -> Callable[[Pilot], Awaitable[None]]:
    """Press keys, let workers finish, and stop cursors blinking so pictures are stable."""

    async def run(pilot: Pilot) -> None:
        await pilot.pause()
        for key in presses:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run


SCREENS = {
    "releases": keys("j", "j"),
    "detail": keys("j", "enter"),
    "compare": keys("j", "j", "j", "c"),
    "trends": keys("t"),
    "audit": keys("e"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(screen: str, size: str, seeded: Path, make_app, snap_compare) -> None:
    app = make_app(seeded, profile="big-core-1t")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=SCREENS[screen])


@pytest.mark.parametrize("size", SIZES)
def test_empty_workspace(size: str, empty: Path, make_app, snap_compare) -> None:
    assert snap_compare(make_app(empty), terminal_size=SIZES[size], run_before=keys())


@pytest.mark.parametrize("dialog, presses", [
    ("help", ("question_mark",)),
    ("approve", ("j", "j", "j", "a", "enter")),  # with the refusal of an empty reason
    ("rollback", ("u",)),
    ("bench", ("b",)),
])
def test_dialog_at_80x24(dialog: str, presses: tuple[str, ...], seeded: Path, make_app,
                         snap_compare) -> None:
    app = make_app(seeded, profile="big-core-1t")
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys(*presses))
