"""Who holds a device's lock, in words: one wording for boards (ssh) and phones (adb)."""

from __future__ import annotations

from typing import Any

DEFAULT_LOCK_TIMEOUT_S = 600.0  # [ssh] and [adb] lock_timeout_s: wait for a busy device


def holder_text(holder: dict[str, Any] | None) -> str:
    """``ci@runner7 pid 4242 since 2026-12-05T10:00:00Z (bench)``; "another measurement"
    when the holder is not known (yet)."""
    if not holder:
        return "another measurement"
    what = f" ({holder['what']})" if holder.get("what") else ""
    return (f"{holder.get('holder', '?')} pid {holder.get('pid', '?')} since "
            f"{holder.get('since', '?')}{what}")


def busy_error(holder: dict[str, Any] | None, waited_s: float, setting: str,
               timeout_s: float) -> str:
    """The failed run's reason when the lock was not free within ``timeout_s``."""
    return (f"device busy: held by {holder_text(holder)}; waited {waited_s:.0f} s "
            f"({setting} = {timeout_s:g})")


def waiting_phase(device: str, holder: dict[str, Any] | None) -> str:
    """The progress phase while waiting for a busy device."""
    return f"waiting for {device}: held by {holder_text(holder)}"
