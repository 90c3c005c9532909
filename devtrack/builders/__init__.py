"""Tiny real ONNX and TFLite models for tests, the demo and benchmarks (no TF or PyTorch)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

Layer = tuple[np.ndarray, np.ndarray]
"""One dense layer: weight matrix ``W`` of shape (in, out) and bias ``b`` of shape (out,)."""


def mlp_weights(in_features: int = 64, hidden: Sequence[int] = (32,), classes: int = 10,
                seed: int = 0) -> list[Layer]:
    """He-initialised float32 weights for a dense MLP; the same seed gives the same arrays."""
    rng = np.random.default_rng(seed)
    sizes = [in_features, *hidden, classes]
    layers: list[Layer] = []
    for fan_in, fan_out in pairwise(sizes):
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        b = rng.standard_normal(fan_out) * 0.1
        layers.append((w.astype(np.float32), b.astype(np.float32)))
    return layers


def check_layers(layers: Sequence[Layer]) -> list[Layer]:
    """Validate ``weights=`` passed to a builder: 2-D ``W``, 1-D ``b``, chained sizes."""
    if not layers:
        raise ValueError("weights must hold at least one (W, b) layer")
    checked: list[Layer] = []
    for i, (w, b) in enumerate(layers):
        w_arr = np.asarray(w, dtype=np.float32)
        b_arr = np.asarray(b, dtype=np.float32)
        if w_arr.ndim != 2 or b_arr.shape != (w_arr.shape[1],):
            raise ValueError(f"layer {i}: W must be (in, out) and b (out,); got "
                             f"{w_arr.shape} and {b_arr.shape}")
        if checked and checked[-1][0].shape[1] != w_arr.shape[0]:
            raise ValueError(f"layer {i}: expects {w_arr.shape[0]} inputs but layer {i - 1} "
                             f"gives {checked[-1][0].shape[1]}")
        checked.append((w_arr, b_arr))
    return checked


def mlp_reference(layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    """What every MLP builder computes, in numpy: ReLU hidden layers, softmax output."""
    h = np.asarray(x, dtype=np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    e = np.exp(h - h.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
