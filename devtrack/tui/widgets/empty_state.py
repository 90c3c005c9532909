"""What an empty workspace shows instead of an empty table: how to add a release."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

# tests/test_cli_help.py checks that every command named here exists.
GUIDE = (
    ("No releases in this workspace yet.\n\n", "bold"),
    ("Register a model file to start:\n", ""),
    ('  devtrack register model.onnx -m kws -v 1.0.0 --notes "first build"\n',
     "cyan"),
    ("Measure it on a device profile:\n", ""),
    ("  devtrack bench kws@1.0.0 --profile ci-host\n", "cyan"),
)
DEMO = (
    ("Or build a complete example workspace to explore:\n", ""),
    ("  devtrack demo\n", "cyan"),
)
FOOT = ("\nPress r to refresh once you have added one, q to quit.", "dim")


def guide_text() -> Text:
    text = Text()
    for part, style in (*GUIDE, *DEMO, FOOT):
        text.append(part, style=style)
    return text


class EmptyState(Static):
    """A centred guide for a workspace with no releases."""

    DEFAULT_CSS = """
    EmptyState { width: 1fr; height: 1fr; padding: 1 2; content-align: left top; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(guide_text(), id=id)
