"""Where a measurement ran: host, CPU, cores, load, OS and kernel, Python, numpy, threads."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

BUSY_LOAD_FACTOR = 0.7


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def environment_snapshot() -> dict[str, Any]:
    """Where the worker ran: host, CPU, cores, load, OS and kernel, Python, numpy, threads
    (on an SSH device, the device's)."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {
        "host": platform.node(),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "cpu_affinity": usable,
        "cpu_governor": governor.read_text().strip() if governor.exists() else None,
        "load_average_before": load_average(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "thread_env": {k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def busy_warning(env: dict[str, Any]) -> str | None:
    """"machine busy: …" when the 1-minute load average at start exceeds 0.7 × cores."""
    load, cores = env.get("load_average_before"), env.get("logical_cores")
    if load and cores and load[0] > BUSY_LOAD_FACTOR * cores:
        return f"machine busy: load average {load[0]:.2f} on {cores} cores"
    return None
