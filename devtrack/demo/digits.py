"""The 8×8 handwritten digits data shipped with devtrack, split deterministically."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).parent / "data" / "digits.csv.gz"


@dataclass(frozen=True)
class Split:
    """Features scaled to 0..1 (float32, shape [n, 64]) and integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(DATA_FILE, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    return table[:, :64] / 16.0, table[:, 64].astype(np.int64)


def split(test_fraction: float = 0.3, seed: int = 0) -> Split:
    x, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])
