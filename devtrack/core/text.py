"""User text made safe for a terminal: shown as typed, never able to drive the terminal."""

from __future__ import annotations

import unicodedata


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with tabs (and newlines, unless kept) as spaces and other control characters
    escaped, so user text can neither move the cursor nor restyle the terminal."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t" or ch == "\n":
            out.append(" ")
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)
