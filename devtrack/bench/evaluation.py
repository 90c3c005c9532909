"""The worker's evaluation phase, after the timed loop: accuracy, fidelity, NaN/Inf counts.

Every sample runs alone (batch of 1, or the sample's full shape when the model input has no
batch axis), the configuration the latency was measured in. The reference model is loaded
only after the candidate is done, in the same process, and runs on the same arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.protocol import encode_predictions
from devtrack.bench.worker import ns_to_ms, verify_artifact
from devtrack.core.dataset import FEED_FILL, FEED_ROWS, FEED_SAMPLES, LABELS
from devtrack.core.inputspec import FillSpec
from devtrack.core.metrics import (
    classification_metrics,
    count_nonfinite,
    fidelity,
    regression_metrics,
    top1_predictions,
)
from devtrack.core.summary import TensorInfo
from devtrack.errors import UsageError
from devtrack.runtimes import RuntimeOptions, RuntimeSession, load_runtime, open_session


def _fill_array(info: TensorInfo, fill: FillSpec) -> np.ndarray:
    """The fixed value in the input's static shape (a scalar when the shape is not static)."""
    dims = info.shape or []
    sizes = [d for d in dims if isinstance(d, int) and d >= 0]
    return np.full(tuple(sizes) if len(sizes) == len(dims) else (), fill.value,
                   dtype=np.dtype(info.dtype))


def run_dataset(session: RuntimeSession, arrays: dict[str, np.ndarray], feeds: dict[str, str],
                fills: dict[str, FillSpec], samples: int) -> list[np.ndarray]:
    """Run every sample through ``session``; one array per output, shaped (samples, ...)."""
    fixed: dict[str, np.ndarray] = {}
    for info in session.inputs:
        how = feeds.get(info.name)
        if how is None:
            raise UsageError(f"the evaluation has no data for input {info.name!r}")
        if how == FEED_FILL:
            fixed[info.name] = _fill_array(info, fills[info.name])
    collected: list[list[np.ndarray]] = [[] for _ in session.outputs]
    for i in range(samples):
        feed = dict(fixed)
        for info in session.inputs:
            how = feeds[info.name]
            if how == FEED_ROWS:
                feed[info.name] = np.ascontiguousarray(arrays[info.name][i:i + 1])
            elif how == FEED_SAMPLES:
                feed[info.name] = np.ascontiguousarray(arrays[info.name][i])
        for k, out in enumerate(session.run(feed)):
            collected[k].append(np.array(out, copy=True))
    stacked = []
    for info, outs in zip(session.outputs, collected, strict=True):
        try:
            stacked.append(np.stack(outs))
        except ValueError:
            raise UsageError(f"output {info.name!r} changes shape from sample to sample; "
                             "devtrack cannot score it") from None
    return stacked


def _load_arrays(dataset: dict[str, Any]) -> dict[str, np.ndarray]:
    """The dataset's arrays: its hash checked first, then read as ``dataset add`` read it
    (sizes from the headers, no more than it recorded, no pickles)."""
    from devtrack.npzfile import DEFAULT_MAX_BYTES, read_npz

    path = Path(dataset["path"])
    verify_artifact(path, dataset["sha256"])
    return read_npz(path, max(DEFAULT_MAX_BYTES, int(dataset.get("nbytes") or 0)))


@dataclass
class Evaluation:
    """The candidate's evaluation, kept until the reference has run (see ``add_fidelity``)."""

    result: dict[str, Any]
    arrays: dict[str, np.ndarray]
    outputs: list[np.ndarray]


def evaluate(session: RuntimeSession, job: dict[str, Any], fills: list[FillSpec],
             warnings: list[str], progress: Callable[[str], None]) -> Evaluation:
    """Run the job's dataset through ``session``: predictions, accuracy or error, NaN/Inf."""
    ds = job["evaluation"]["dataset"]
    progress("evaluate")
    t0 = time.perf_counter_ns()
    arrays = _load_arrays(ds)
    n = int(ds["samples"])
    outputs = run_dataset(session, arrays, job["evaluation"]["feeds"],
                          {f.name: f for f in fills}, n)
    task = ds["task"]
    labels = arrays.get(LABELS)
    metrics: dict[str, Any] = {"n": n, "batch": 1,
                               "phases": {"evaluate_ms": ns_to_ms(time.perf_counter_ns() - t0)}}
    result: dict[str, Any] = {"dataset": ds["name"], "task": task, "samples": n,
                              "accuracy": None, "predictions": None, "fidelity": None,
                              "metrics": metrics}
    if task == "classification":
        predictions = top1_predictions(outputs[0])
        result["predictions"] = encode_predictions(predictions)
        if labels is not None:
            cls = classification_metrics(outputs[0], labels)
            metrics.update(cls.to_dict())
            result["accuracy"] = cls.accuracy
    elif labels is not None:
        metrics.update(regression_metrics(outputs[0], labels).to_dict())
    nonfinite = count_nonfinite(outputs)
    metrics["nonfinite"] = nonfinite.to_dict()
    result["nonfinite"] = nonfinite.values
    if nonfinite.flagged:
        warnings.append(f"{nonfinite.describe()} on dataset {ds['name']!r}")
    return Evaluation(result, arrays, outputs)


def add_fidelity(evaluation: Evaluation, job: dict[str, Any], options: RuntimeOptions,
                 warnings: list[str], progress: Callable[[str], None]) -> dict[str, Any]:
    """Load the job's reference (if any), run it on the same samples and add ``fidelity``.

    Call it after the candidate's session is released: only one model is resident at a time.
    Returns the finished evaluation result.
    """
    result = evaluation.result
    ref = job["evaluation"].get("reference")
    if ref is None:
        return result
    progress("reference")
    t0 = time.perf_counter_ns()
    ref_outputs = _run_reference(ref, evaluation.arrays, int(result["samples"]), options)
    result["metrics"]["phases"]["reference_ms"] = ns_to_ms(time.perf_counter_ns() - t0)
    ref_nonfinite = count_nonfinite(ref_outputs)
    if ref_nonfinite.flagged:
        warnings.append(f"reference {ref['ref']}: {ref_nonfinite.describe()}")
    try:
        fid = fidelity(evaluation.outputs, ref_outputs, top1=result["task"] == "classification")
    except ValueError as exc:
        raise UsageError(f"cannot compare with reference {ref['ref']}: {exc}") from None
    result["fidelity"] = {"reference": ref["ref"], **fid.to_dict(),
                          "reference_nonfinite": ref_nonfinite.values}
    return result


def _run_reference(ref: dict[str, Any], arrays: dict[str, np.ndarray], n: int,
                   options: RuntimeOptions) -> list[np.ndarray]:
    path = Path(ref["artifact_path"])
    verify_artifact(path, ref["sha256"])
    load_runtime(ref["format"], options)
    session = open_session(path, ref["format"], options)
    fills = {d["name"]: FillSpec.from_dict(d) for d in ref.get("fills") or []}
    try:
        return run_dataset(session, arrays, ref["feeds"], fills, n)
    finally:
        del session
