"""SIGTERM and SIGHUP handled like Ctrl-C: an interrupt in the main thread that names its signal.

CI sends SIGTERM when a job is cancelled and a closed terminal sends SIGHUP; by default
either kills devtrack on the spot, leaving the measurement unrecorded and its temp folder
behind. Inside :func:`signals_interrupt` they raise :class:`Interrupted`, a
``KeyboardInterrupt``, so every path that already cleans up after Ctrl-C (stop the worker,
store the run as aborted, remove the temp folder) does the same for them, and the exit
code is 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_state: dict[str, Any] = {"deferring": 0, "pending": None}


class Interrupted(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP that arrived while devtrack was working."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal_name(signum))

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signum_of(exc: BaseException) -> int:
    """The signal behind an interrupt: a plain KeyboardInterrupt is Ctrl-C (SIGINT)."""
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def reason(signum: int) -> str:
    """Why a measurement stopped, for the aborted run's error."""
    if signum == signal.SIGINT:
        return "interrupted by the user (Ctrl-C, SIGINT)"
    why = {signal.SIGTERM: " (e.g. a cancelled CI job)",
           signal.SIGHUP: " (the terminal was closed)"}.get(signal.Signals(signum), "")
    return f"stopped by {signal_name(signum)}{why}"


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["deferring"]:
        _state["pending"] = _state["pending"] or signum
        return
    _stand_down()
    raise Interrupted(signum)


def _stand_down() -> None:
    """One interrupt is enough: a repeated SIGTERM or SIGHUP must not cut short the cleanup
    it starts (storing the aborted run, removing the temp folder); a stuck cleanup is
    SIGKILL's job. A second Ctrl-C is a person insisting: it interrupts as Python does."""
    for sig in HANDLED:
        if signal.getsignal(sig) is _handler:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                          else signal.SIG_IGN)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """In this block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`; the previous
    handlers come back after it. A signal the process was started to ignore (``nohup``, a
    background job's SIGINT) stays ignored. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state["deferring"], _state["pending"] = 0, None


@contextmanager
def deferred() -> Iterator[None]:
    """Hold an interrupt back until this block is done (a write that must land whole, such
    as a finished run), then raise it. Signals interrupt only the main thread, so in any
    other thread (a device's job in a parallel bench, the app's background bench) this does
    nothing: a pending interrupt must never surface in a thread that cannot act on it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        pending = _state["pending"]
        if not _state["deferring"] and pending is not None:
            _state["pending"] = None
            _stand_down()
            raise Interrupted(pending)
