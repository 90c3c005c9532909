"""devtrack: track, benchmark, compare, gate and roll back on-device model releases."""

__version__ = "0.1.0"
