"""SIGTERM and SIGHUP as interrupts (devtrack/interrupts.py), in this very process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from devtrack.interrupts import Interrupted, deferred, reason, signals_interrupt, signum_of

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture(autouse=True)
def ctrl_c_is_live():
    """Ctrl-C as a terminal delivers it, whatever this test process inherited: started in the
    background by a non-interactive shell, it was told to ignore SIGINT (and devtrack keeps
    an ignored signal ignored, which another test checks)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def deliver(sig: int) -> None:
    """Send ``sig`` to this process and give Python a moment to run its handler."""
    os.kill(os.getpid(), sig)
    time.sleep(0.05)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_in_the_block_is_an_interrupt_naming_it(sig: int, code: int) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as info, signals_interrupt():
        deliver(sig)
    assert info.value.exit_code == code and signum_of(info.value) == sig
    assert isinstance(info.value, KeyboardInterrupt)  # every Ctrl-C cleanup path applies
    assert signal.getsignal(sig) is before  # restored after the block


def test_a_second_signal_does_not_cut_the_cleanup_short() -> None:
    cleaned = False
    with pytest.raises(Interrupted), signals_interrupt():
        try:
            deliver(signal.SIGTERM)
        finally:
            deliver(signal.SIGTERM)  # CI may signal twice; the first one's cleanup goes on
            cleaned = True
    assert cleaned


def test_a_second_ctrl_c_still_interrupts_the_cleanup() -> None:
    with pytest.raises(KeyboardInterrupt) as info, signals_interrupt():
        try:
            deliver(signal.SIGINT)
        finally:
            deliver(signal.SIGINT)  # a person pressing Ctrl-C again means it
    assert not isinstance(info.value, Interrupted)


def test_a_write_in_progress_finishes_before_the_interrupt() -> None:
    steps = []
    with pytest.raises(Interrupted), signals_interrupt():
        with deferred():
            deliver(signal.SIGTERM)
            steps.append("stored")  # still running: the signal waits
        steps.append("never")
    assert steps == ["stored"]


def test_a_signal_the_process_was_told_to_ignore_stays_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with signals_interrupt():
            deliver(signal.SIGHUP)  # no exception
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_reasons_name_the_signal() -> None:
    assert reason(signal.SIGINT) == "interrupted by the user (Ctrl-C, SIGINT)"
    assert reason(signal.SIGTERM) == "stopped by SIGTERM (e.g. a cancelled CI job)"
    assert reason(signal.SIGHUP) == "stopped by SIGHUP (the terminal was closed)"
    assert signum_of(KeyboardInterrupt()) == signal.SIGINT
