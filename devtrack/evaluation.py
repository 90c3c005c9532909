"""Accuracy and fidelity runs, parent side: choose dataset and reference, store and read results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devtrack import queries
from devtrack.bench.protocol import predictions_from_blob, text_to_blob
from devtrack.core.dataset import Dataset, outputs_mismatch
from devtrack.core.inputspec import FillSpec
from devtrack.core.release import Release
from devtrack.datasets import check_dataset_fits, dataset_file, default_dataset, get_dataset
from devtrack.errors import UsageError
from devtrack.store import utc_now
from devtrack.workspace import Workspace

SECONDS_PER_SAMPLE = 0.05  # worker time allowed per evaluated sample and model, beyond timing
EVAL_TIMEOUT_BASE_S = 60.0
EVAL_TIMEOUT_MAX_S = 6 * 3600.0  # a hung worker is stopped within hours, whatever the dataset
RUN_EVAL_KEYS = ("dataset", "dataset_sha256", "task", "samples_evaluated", "accuracy",
                 "accuracy_ci", "top5", "mae", "rmse", "fidelity", "nonfinite")
"""Keys a run dict gains when the run was evaluated (``attach_evaluations``)."""


@dataclass(frozen=True)
class EvalPlan:
    """What the worker evaluates after timing: a dataset, and a reference for fidelity."""

    dataset: Dataset
    feeds: dict[str, str]  # model input -> core.dataset FEED_ROWS / FEED_SAMPLES / FEED_FILL
    reference: Release | None = None
    reference_feeds: dict[str, str] | None = None
    notes: tuple[str, ...] = ()  # become warnings on the run (e.g. why fidelity was skipped)

    def timeout_allowance_s(self) -> float:
        """Worker time added for the evaluation: per sample and model, at most 6 hours."""
        models = 2 if self.reference is not None else 1
        wanted = EVAL_TIMEOUT_BASE_S + self.dataset.samples * SECONDS_PER_SAMPLE * models
        return min(wanted, EVAL_TIMEOUT_MAX_S)


def resolve_evaluation(ws: Workspace, release: Release, fills: Sequence[FillSpec] = (),
                       dataset: str | None = None, reference: str | None = None,
                       enabled: bool = True) -> EvalPlan | None:
    """The evaluation of ``release``: ``dataset`` or else the model line's default, with
    ``reference`` (MODEL@VERSION) or else the release's parent for fidelity.

    None when there is nothing to evaluate. Raises UsageError, before anything runs, when
    the dataset or an explicit reference does not fit the release. A parent whose outputs
    differ is skipped with a note instead: it was not asked for by name.
    """
    from devtrack.registry import get_release

    if not enabled:
        if dataset is not None or reference is not None:
            raise UsageError("--no-eval cannot be combined with --eval or --reference")
        return None
    chosen = get_dataset(ws, dataset) if dataset is not None else default_dataset(
        ws, release.model)
    if chosen is None:
        if reference is not None:
            raise UsageError(f"--reference needs an evaluation dataset: pass --eval NAME or set "
                             f"one with 'devtrack dataset default {release.model} NAME'")
        return None
    fill_names = [f.name for f in fills]
    try:
        feeds = check_dataset_fits(chosen, release, fill_names)
    except UsageError as exc:
        if dataset is not None:
            raise
        raise UsageError(f"{exc} (it is {release.model}'s default dataset: pass --eval NAME or "
                         "--no-eval, or change it with 'devtrack dataset default')") from None
    notes: list[str] = []
    ref: Release | None = None
    ref_feeds: dict[str, str] | None = None
    if reference is not None:
        ref = get_release(ws, reference)
        problem = outputs_mismatch(release.summary.outputs, ref.summary.outputs)
        if problem is not None:
            raise UsageError(f"reference {ref.ref} cannot be compared with {release.ref}: "
                             f"{problem}; pick a release with the same outputs")
        ref_feeds = check_dataset_fits(chosen, ref, fill_names)
    elif release.parent is not None:
        ref = get_release(ws, f"{release.model}@{release.parent}")
        problem = outputs_mismatch(release.summary.outputs, ref.summary.outputs)
        try:
            ref_feeds = None if problem else check_dataset_fits(chosen, ref, fill_names)
        except UsageError as exc:
            problem = str(exc)
        if problem is not None:
            notes.append(f"fidelity not measured: parent {ref.ref} does not match ({problem}); "
                         "pass --reference MODEL@VERSION")
            ref = None
    return EvalPlan(chosen, feeds, ref, ref_feeds, tuple(notes))


def evaluation_job(ws: Workspace, plan: EvalPlan, fills: Sequence[FillSpec]) -> dict[str, Any]:
    """The ``evaluation`` part of a worker job (stored files are hash-checked here and there)."""
    ds = plan.dataset
    job: dict[str, Any] = {
        "dataset": {"name": ds.name, "sha256": ds.sha256, "path": str(dataset_file(ws, ds)),
                    "task": ds.task, "samples": ds.samples, "has_labels": ds.has_labels,
                    "nbytes": ds.nbytes},
        "feeds": plan.feeds,
        "reference": None,
    }
    ref = plan.reference
    if ref is not None:
        ref_fills = {f.name: f for f in ref.fills}
        ref_fills.update({f.name: f for f in fills})
        job["reference"] = {
            "ref": ref.ref,
            "artifact_path": str(ws.artifacts.verify(ref.sha256, f"release {ref.ref}")),
            "sha256": ref.sha256, "format": ref.format, "feeds": plan.reference_feeds,
            "fills": [f.to_dict() for f in ref_fills.values()],
        }
    return job


def store_evaluation(ws: Workspace, run_id: int, plan: EvalPlan,
                     result: dict[str, Any]) -> int:
    """Insert the worker's evaluation result for ``run_id``; call inside a transaction."""
    predictions = result.get("predictions")
    return ws.store.insert("evaluations", {
        "run_id": run_id,
        "dataset_id": plan.dataset.id,
        "task": plan.dataset.task,
        "metrics": json.dumps(result.get("metrics") or {}, sort_keys=True),
        "accuracy": result.get("accuracy"),
        "predictions": text_to_blob(predictions) if predictions else None,
        "reference_release_id": plan.reference.id if plan.reference is not None else None,
        "fidelity": json.dumps(result["fidelity"], sort_keys=True) if result.get("fidelity")
        else None,
        "nonfinite": int(result.get("nonfinite") or 0),
        "created_at": utc_now(),
    })


def evaluation_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The flat fields a run shows for its evaluation row (see RUN_EVAL_KEYS)."""
    metrics = json.loads(row["metrics"] or "{}")
    data: dict[str, Any] = {
        "dataset": row["dataset"], "dataset_sha256": row["dataset_sha256"],
        "task": row["task"], "samples_evaluated": metrics.get("n"),
    }
    if row["task"] == "regression":
        data["mae"] = metrics.get("mae")
        data["rmse"] = metrics.get("rmse")
    else:
        data["accuracy"] = row["accuracy"]
        ci = metrics.get("accuracy_ci")
        data["accuracy_ci"] = list(ci) if ci else None
        data["top5"] = metrics.get("top5")
    data["fidelity"] = json.loads(row["fidelity"]) if row["fidelity"] else None
    data["nonfinite"] = int(row["nonfinite"] or 0)
    return data


def attach_evaluations(ws: Workspace, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the RUN_EVAL_KEYS fields to every run dict that has an evaluation (in place)."""
    if not runs:
        return runs
    rows = queries.evaluations_of_runs(ws.store, [int(r["run_id"]) for r in runs])
    latest = {row["run_id"]: row for row in rows}
    for run in runs:
        row = latest.get(run["run_id"])
        if row is not None:
            run.update(evaluation_summary(row))
    return runs


def predictions_of(ws: Workspace, run_id: int) -> list[int] | None:
    """The stored top-1 class per sample of a run's evaluation (-1: non-finite scores)."""
    blob = queries.newest_predictions(ws.store, run_id)
    if blob is None:
        return None
    return [int(x) for x in predictions_from_blob(blob)]
