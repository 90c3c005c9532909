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


ECHO_LIMIT = 80  # characters of user input an error message repeats


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis and its full length, so an
    error about a 10,000-character name stays one readable line."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def shown(text: str, limit: int = ECHO_LIMIT) -> str:
    """User input as an error message echoes it: quoted like ``repr`` and clipped (see
    :func:`clip`), e.g. ``'kws'`` or ``'aaaa…' (10000 characters)``."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit] + '…'!r} ({len(text)} characters)"


def clip_long_words(text: str, longest: int = 300) -> str:
    """``text`` with every run of more than ``longest`` non-space characters clipped (see
    :func:`clip`): the last guard before an error reaches the terminal, for messages that
    echo user input without :func:`shown` (Click's own, the operating system's)."""
    import re

    return re.sub(rf"\S{{{longest + 1},}}", lambda m: clip(m.group(0)), text)
