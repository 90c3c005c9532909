"""Evaluation dataset registry: store ``.npz`` files content-addressed, list them, set defaults."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from devtrack import queries, queries_datasets
from devtrack.core.audit_state import dataset_fields_digest
from devtrack.core.dataset import (
    LABELS,
    ArraySpec,
    Dataset,
    check_arrays,
    check_dataset_name,
    check_labels_fit,
    check_task,
    plan_feeds,
)
from devtrack.core.release import Release
from devtrack.core.text import shown
from devtrack.errors import DuplicateError, NotFoundError, UsageError
from devtrack.provenance import current_user
from devtrack.store import utc_now
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

    from devtrack import records

def load_npz(path: Path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, its sizes checked from the headers before
    anything is loaded (at most ``max_bytes``, default 1 GiB); UsageError (one line) for
    anything else."""
    from devtrack.npzfile import DEFAULT_MAX_BYTES, read_npz

    return read_npz(path, DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)


def describe_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, ArraySpec], bool]:
    """Shapes and dtypes of ``arrays`` (labels get their value range), and whether the
    labels are whole numbers."""
    import numpy as np

    specs: dict[str, ArraySpec] = {}
    integral = True
    for key, arr in arrays.items():
        value_range = None
        if key == LABELS and arr.size:
            if arr.dtype.kind == "f":
                if not np.isfinite(arr).all():
                    raise UsageError("labels contain NaN or Inf")
                integral = bool(np.all(arr == np.round(arr)))
            value_range = (float(arr.min()), float(arr.max()))
        specs[key] = ArraySpec(tuple(int(d) for d in arr.shape), arr.dtype.name, value_range)
    return specs, integral


def _to_dataset(row: records.Dataset, used_by: list[str]) -> Dataset:
    arrays = {k: ArraySpec.from_dict(v) for k, v in json.loads(row.arrays).items()}
    return Dataset(id=row.id, name=row.name, sha256=row.sha256, task=row.task,
                   samples=row.samples, arrays=arrays, has_labels=bool(row.has_labels),
                   source_name=row.source_name, created_at=row.created_at,
                   created_by=row.created_by, used_by=used_by)


def _defaults(ws: Workspace) -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for model, dataset in queries_datasets.defaults_by_model(ws.store):
        used.setdefault(dataset, []).append(model)
    return used


def list_datasets(ws: Workspace) -> list[Dataset]:
    """Every registered dataset, by name, with the model lines that use it by default."""
    used = _defaults(ws)
    return [_to_dataset(row, used.get(row.name, []))
            for row in queries_datasets.datasets(ws.store)]


def get_dataset(ws: Workspace, name: str) -> Dataset:
    row = queries.dataset(ws.store, name)
    if row is None:
        known = ", ".join(d.name for d in list_datasets(ws)) or "none yet"
        raise NotFoundError(f"unknown dataset {shown(name)} (datasets: {known}); add one with "
                            "'devtrack dataset add FILE --name NAME'")
    return _to_dataset(row, _defaults(ws).get(name, []))


def _duplicate_dataset(name: str) -> DuplicateError:
    return DuplicateError(f"dataset {name!r} already exists; pick another --name "
                          "(see 'devtrack dataset list')")


def add_dataset(ws: Workspace, path: Path, name: str, task: str | None = None,
                max_bytes: int | None = None) -> Dataset:
    """Validate the ``.npz`` at ``path``, store it content-addressed and record it.

    The file holds one array per model input (first axis = samples) and optionally
    ``labels``, at most ``max_bytes`` uncompressed (default 1 GiB, read from the headers
    before anything is loaded). Nothing is written when anything is wrong.
    """
    check_dataset_name(name)
    if task is not None:
        check_task(task)
    if queries.dataset(ws.store, name) is not None:
        raise _duplicate_dataset(name)
    from devtrack.artifacts import sha256_file

    arrays = load_npz(path, max_bytes)
    specs, integral = describe_arrays(arrays)
    samples, task = check_arrays(specs, task, integral)
    sha256 = sha256_file(path)
    actor = current_user()
    now = utc_now()
    # As in register: the stored file may be shared, so it is removed on failure only
    # through discard() (pin held exclusively, no row needs it), and the name is decided
    # inside the write transaction.
    stored = None
    try:
        with ws.artifacts.hold(sha256):
            stored = ws.artifacts.put(path, sha256)
            with ws.store.transaction():
                if queries.dataset(ws.store, name) is not None:
                    raise _duplicate_dataset(name)
                row = {
                    "name": name, "sha256": sha256, "task": task, "samples": samples,
                    "arrays": json.dumps({k: v.to_dict() for k, v in specs.items()}),
                    "has_labels": int(LABELS in specs), "source_name": path.name,
                    "created_at": now, "created_by": actor,
                }
                ws.store.insert("datasets", row)
                ws.store.append_event(
                    actor=actor, kind="dataset_add", model=None, version=None,
                    payload={"dataset": name, "sha256": sha256, "task": task,
                             "samples": samples, "source_name": path.name,
                             "fields_sha256": dataset_fields_digest(row)}, ts=now)
    except BaseException:
        if stored == "new":
            with suppress(Exception):  # the add's own error is the one to report
                ws.artifacts.discard(ws.artifacts.path_for(sha256), sha256,
                                     lambda: ws.store.references_file(sha256))
        raise
    return get_dataset(ws, name)


def dataset_file(ws: Workspace, dataset: Dataset) -> Path:
    """The stored file, after checking it still hashes to the dataset's sha256."""
    return ws.artifacts.verify(dataset.sha256, f"dataset {dataset.name}")


def load_dataset_arrays(ws: Workspace, dataset: Dataset) -> dict[str, np.ndarray]:
    """The dataset's arrays, read from the verified stored file."""
    return load_npz(dataset_file(ws, dataset))


def check_dataset_fits(dataset: Dataset, release: Release,
                       fills: list[str] | None = None) -> dict[str, str]:
    """How ``release``'s inputs are fed from ``dataset`` (see ``core.dataset.plan_feeds``);
    UsageError naming the array and the shape or dtype expected when it does not fit."""
    names = [f.name for f in release.fills] + list(fills or [])
    feeds = plan_feeds(dataset, release.summary.inputs, set(names), release.ref)
    check_labels_fit(dataset, release.summary.outputs, release.ref)
    return feeds


def default_dataset(ws: Workspace, model: str) -> Dataset | None:
    """The model line's default evaluation dataset, if one is set."""
    from devtrack.registry import require_model

    require_model(ws, model)
    name = queries_datasets.default_of_model(ws.store, model)
    return get_dataset(ws, name) if name else None


def set_default_dataset(ws: Workspace, model: str, name: str | None) -> Dataset | None:
    """Make ``name`` the dataset ``bench`` evaluates ``model`` on (None clears it).

    The dataset must fit the model line's latest release. Returns the new default.
    """
    from devtrack.registry import get_release, require_model

    require_model(ws, model)
    dataset = None
    if name is not None:
        dataset = get_dataset(ws, name)
        check_dataset_fits(dataset, get_release(ws, f"{model}@latest"))
    with ws.store.transaction():
        queries_datasets.set_default_of_model(ws.store, model, name)
        ws.store.append_event(actor=current_user(), kind="dataset_default", model=model,
                              version=None, payload={"dataset": name})
    return get_dataset(ws, name) if name is not None else None
