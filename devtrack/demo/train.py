"""A small MLP trained with plain numpy (mini-batch SGD with momentum), deterministic."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def _forward(layers: Layers, x: np.ndarray) -> list[np.ndarray]:
    activations = [x]
    for i, (w, b) in enumerate(layers):
        z = activations[-1] @ w + b
        activations.append(np.maximum(z, 0) if i < len(layers) - 1 else z)
    return activations


def predict_logits(layers: Layers, x: np.ndarray) -> np.ndarray:
    return _forward(layers, x)[-1]


def accuracy(layers: Layers, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict_logits(layers, x).argmax(axis=1) == y))


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], epochs: int,
              seed: int = 0, lr: float = 0.05, batch: int = 32,
              label_noise: float = 0.0) -> Layers:
    """Train a ReLU MLP with softmax cross-entropy; ``label_noise`` corrupts that share of labels.

    Returns float32 weights as (W [in, out], b [out]) per layer, the layout the builders take.
    """
    rng = np.random.default_rng(seed)
    y = y.copy()
    if label_noise > 0:
        flip = rng.random(len(y)) < label_noise
        y[flip] = rng.integers(0, 10, size=int(flip.sum()))
    sizes = [x.shape[1], *hidden, 10]
    layers: Layers = [
        (rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2.0 / a)),
         np.zeros(b, dtype=np.float32))
        for a, b in pairwise(sizes)
    ]
    velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    onehot = np.eye(10, dtype=np.float32)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            acts = _forward(layers, x[idx])
            logits = acts[-1]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            grad = (probs - onehot[idx]) / len(idx)
            for i in range(len(layers) - 1, -1, -1):
                w, b = layers[i]
                gw = acts[i].T @ grad
                gb = grad.sum(axis=0)
                if i > 0:
                    grad = (grad @ w.T) * (acts[i] > 0)
                vw, vb = velocity[i]
                vw = 0.9 * vw - lr * gw
                vb = 0.9 * vb - lr * gb
                velocity[i] = (vw, vb)
                layers[i] = ((w + vw).astype(np.float32), (b + vb).astype(np.float32))
    return layers
