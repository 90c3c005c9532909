"""Resident memory of the worker process: VmRSS and a resettable VmHWM, or getrusage."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_MIB = 1024.0 * 1024.0


class MemoryProbe:
    """Resident memory of this process: VmRSS and a resettable VmHWM where /proc allows.

    Elsewhere ``resource.getrusage`` gives only a peak that cannot be reset; every number
    carries ``method`` so a reader knows which one they got.
    """

    def __init__(self) -> None:
        self.has_proc = Path("/proc/self/status").exists()
        self.can_reset = self.has_proc and self.reset_peak()
        if self.can_reset:
            self.method = "VmHWM after clear_refs=5"
        elif self.has_proc:
            self.method = "VmHWM (no reset: clear_refs not writable)"
        else:
            self.method = "ru_maxrss (no reset)"

    @staticmethod
    def _status_kb(field: str) -> float | None:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
        return None

    def rss_mb(self) -> float:
        """Current resident memory (falls back to the peak so far without /proc)."""
        if self.has_proc:
            kb = self._status_kb("VmRSS")
            if kb is not None:
                return kb / 1024.0
        return self._ru_maxrss_mb()

    def peak_mb(self) -> float:
        """Peak resident memory since the last ``reset_peak`` (or process start)."""
        if self.has_proc:
            kb = self._status_kb("VmHWM")
            if kb is not None:
                return kb / 1024.0
        return self._ru_maxrss_mb()

    def reset_peak(self) -> bool:
        """Set the high-water mark to the current RSS (Linux ≥ 4.0); False if not allowed."""
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _ru_maxrss_mb() -> float:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / _MIB if sys.platform == "darwin" else peak / 1024.0  # bytes vs KiB
