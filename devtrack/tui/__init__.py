"""The Textual release-review app (``devtrack`` with no sub-command, or ``devtrack tui``)."""
