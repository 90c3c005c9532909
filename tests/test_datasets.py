"""The dataset registry and dataset-to-model fitting, through the library (no worker runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devtrack.core.dataset import FEED_FILL, FEED_ROWS, FEED_SAMPLES, ArraySpec, check_arrays
from devtrack.datasets import (
    add_dataset,
    check_dataset_fits,
    default_dataset,
    get_dataset,
    list_datasets,
    load_npz,
    set_default_dataset,
)
from devtrack.errors import DuplicateError, NotFoundError, UsageError
from devtrack.evaluation import resolve_evaluation
from devtrack.registry import RegisterRequest, get_release, register_release
from devtrack.workspace import Workspace, open_workspace
from tests.conftest import snapshot_workspace

pytestmark = pytest.mark.both_backends


@pytest.fixture
def ws(ws_dir: Path) -> Iterator[Workspace]:
    with open_workspace(ws_dir) as workspace:
        yield workspace


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _digits(tmp_path: Path, n: int = 12, name: str = "d.npz") -> Path:
    rng = np.random.default_rng(0)
    return _npz(tmp_path / name, input=rng.standard_normal((n, 16)).astype(np.float32),
                labels=rng.integers(0, 4, n))


def test_add_stores_the_file_content_addressed_with_its_shapes(ws: Workspace,
                                                               tmp_path: Path) -> None:
    path = _digits(tmp_path)
    added = add_dataset(ws, path, "digits")
    assert (added.samples, added.task, added.has_labels) == (12, "classification", True)
    assert added.arrays["input"] == ArraySpec((12, 16), "float32")
    assert added.arrays["labels"].shape == (12,)
    assert added.source_name == "d.npz" and added.created_by == "tester"
    assert ws.artifacts.path_for(added.sha256).read_bytes() == path.read_bytes()
    assert [d.name for d in list_datasets(ws)] == ["digits"]
    [event] = ws.store.events(kind="dataset_add")
    assert json.loads(event["payload"])["sha256"] == added.sha256


def test_same_file_under_two_names_is_stored_once(ws: Workspace, tmp_path: Path) -> None:
    path = _digits(tmp_path)
    a = add_dataset(ws, path, "a")
    b = add_dataset(ws, path, "b")
    assert a.sha256 == b.sha256
    assert len(list((ws.dot_dir / "artifacts").rglob(a.sha256))) == 1


@pytest.mark.parametrize(("labels", "task", "expected"), [
    (np.arange(4) % 2, None, "classification"),
    (np.linspace(0, 1, 4), None, "regression"),
    (None, None, "classification"),
    (np.array([0.0, 1.0, 2.0, 1.0]), "classification", "classification"),
    (np.arange(4), "regression", "regression"),
])
def test_task_is_taken_from_the_flag_or_the_labels(ws: Workspace, tmp_path: Path,
                                                   labels: np.ndarray | None, task: str | None,
                                                   expected: str) -> None:
    arrays = {"input": np.zeros((4, 16), np.float32)}
    if labels is not None:
        arrays["labels"] = labels
    added = add_dataset(ws, _npz(tmp_path / "x.npz", **arrays), "x", task)
    assert added.task == expected
    assert added.has_labels == (labels is not None)


def test_duplicate_and_unknown_names_are_refused(ws: Workspace, tmp_path: Path) -> None:
    add_dataset(ws, _digits(tmp_path), "digits")
    before = snapshot_workspace(ws.root)
    with pytest.raises(DuplicateError, match="dataset 'digits' already exists"):
        add_dataset(ws, _digits(tmp_path, 5, "other.npz"), "digits")
    with pytest.raises(NotFoundError, match=r"unknown dataset 'digit' \(datasets: digits"):
        get_dataset(ws, "digit")
    assert snapshot_workspace(ws.root) == before


@pytest.mark.parametrize(("arrays", "task", "message"), [
    ({"labels": ArraySpec((3,), "int64")}, None, "no input arrays"),
    ({"a": ArraySpec((3, 2), "float32"), "b": ArraySpec((4, 2), "float32")}, None,
     "disagree on the number of samples"),
    ({"a": ArraySpec((0, 2), "float32")}, None, "0 samples"),
    ({"a": ArraySpec((3, 2), "float32"), "labels": ArraySpec((2,), "int64")}, None,
     "labels has 2 entries but the arrays have 3 samples"),
    ({"a": ArraySpec((3, 2), "float32"), "labels": ArraySpec((3, 2), "int64")},
     "classification", "one class id per sample"),
    ({"a": ArraySpec((3, 2), "float32"), "labels": ArraySpec((3,), "int64", (-1, 2))}, None,
     "class ids >= 0"),
])
def test_inconsistent_arrays_are_refused(arrays: dict[str, ArraySpec], task: str | None,
                                         message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_arrays(arrays, task)


@pytest.mark.parametrize(("content", "message"), [
    (b"hello, not a zip", "not a zip archive"),
    (b"\x93NUMPY\x01\x00", "a .npy file holds a single array"),
])
def test_files_that_are_not_npz_are_refused(tmp_path: Path, content: bytes,
                                            message: str) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        load_npz(path)


def test_an_npz_with_a_damaged_member_is_refused(tmp_path: Path) -> None:
    path = _digits(tmp_path)
    data = bytearray(path.read_bytes())
    data[200:216] = b"\xff" * 16  # inside input.npy's bytes: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="corrupt"):
        load_npz(path)


def test_an_npz_of_python_objects_is_refused(tmp_path: Path) -> None:
    path = _npz(tmp_path / "obj.npz", input=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(UsageError, match="Python objects"):
        load_npz(path)


def _register(ws: Workspace, path: Path, version: str, model: str = "kws",
              parent: str | None = None, fills: list | None = None) -> None:
    register_release(ws, RegisterRequest(file=path, model=model, version=version,
                                         parent=parent, fills=fills or []))


def test_rows_samples_and_fills_feed_the_model_inputs(ws: Workspace, tmp_path: Path,
                                                      mlp_onnx: Path,
                                                      dynamic_onnx: Path) -> None:
    from devtrack.core.inputspec import FillSpec

    _register(ws, mlp_onnx, "1")
    _register(ws, dynamic_onnx, "5", model="vad", fills=[FillSpec("sr", 16000)])
    rows = add_dataset(ws, _digits(tmp_path), "rows")
    full = add_dataset(ws, _npz(tmp_path / "f.npz", input=np.zeros((3, 1, 16), np.float32)),
                       "full")
    audio = add_dataset(ws, _npz(tmp_path / "a.npz", input=np.zeros((3, 512), np.float32)),
                        "audio")
    assert check_dataset_fits(rows, get_release(ws, "kws@1")) == {"input": FEED_ROWS}
    assert check_dataset_fits(full, get_release(ws, "kws@1")) == {"input": FEED_SAMPLES}
    assert check_dataset_fits(audio, get_release(ws, "vad@5")) == {"input": FEED_ROWS,
                                                                   "sr": FEED_FILL}


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((3, 16), np.float32)},
     "has no array for input 'input' of kws@1 (expected shape (N, 16) float32; the dataset "
     "has: x)"),
    ({"input": np.zeros((3, 15), np.float32)},
     "array 'input' has shape (3, 15) but kws@1 input 'input' is (1, 16): expected shape "
     "(N, 16)"),
    ({"input": np.zeros((3, 16), np.float64)},
     "array 'input' is float64 but input 'input' of kws@1 is float32"),
    ({"input": np.zeros((3, 16), np.float32), "labels": np.array([0, 1, 4])},
     "labels up to 4 but output 'output' of kws@1 has 4 class score(s)"),
])
def test_a_dataset_that_does_not_fit_names_the_array_and_shape(
        ws: Workspace, tmp_path: Path, mlp_onnx: Path, arrays: dict[str, np.ndarray],
        message: str) -> None:
    _register(ws, mlp_onnx, "1")
    dataset = add_dataset(ws, _npz(tmp_path / "x.npz", **arrays), "x")
    with pytest.raises(UsageError) as exc:
        check_dataset_fits(dataset, get_release(ws, "kws@1"))
    assert message in str(exc.value)


def test_default_dataset_is_set_checked_and_cleared(ws: Workspace, tmp_path: Path,
                                                    mlp_onnx: Path) -> None:
    _register(ws, mlp_onnx, "1")
    add_dataset(ws, _digits(tmp_path), "digits")
    add_dataset(ws, _npz(tmp_path / "w.npz", input=np.zeros((2, 3), np.float32)), "wrong")
    assert default_dataset(ws, "kws") is None
    set_default_dataset(ws, "kws", "digits")
    assert default_dataset(ws, "kws").name == "digits"  # type: ignore[union-attr]
    assert get_dataset(ws, "digits").used_by == ["kws"]
    before = snapshot_workspace(ws.root)
    with pytest.raises(UsageError, match="array 'input' has shape"):
        set_default_dataset(ws, "kws", "wrong")
    with pytest.raises(NotFoundError, match="unknown model 'kw'"):
        set_default_dataset(ws, "kw", "digits")
    assert snapshot_workspace(ws.root) == before
    set_default_dataset(ws, "kws", None)
    assert default_dataset(ws, "kws") is None


def test_evaluation_uses_the_default_dataset_and_the_parent_as_reference(
        ws: Workspace, tmp_path: Path, mlp_onnx: Path, mlp_onnx_b: Path) -> None:
    _register(ws, mlp_onnx, "1")
    _register(ws, mlp_onnx_b, "2", parent="1")
    release = get_release(ws, "kws@2")
    assert resolve_evaluation(ws, release) is None  # no dataset: timing only
    add_dataset(ws, _digits(tmp_path), "digits")
    set_default_dataset(ws, "kws", "digits")
    plan = resolve_evaluation(ws, release)
    assert plan is not None and plan.dataset.name == "digits"
    assert plan.reference is not None and plan.reference.ref == "kws@1"
    explicit = resolve_evaluation(ws, release, reference="kws@2")
    assert explicit is not None and explicit.reference is not None
    assert explicit.reference.ref == "kws@2"
    assert resolve_evaluation(ws, release, enabled=False) is None


def test_a_parent_with_other_outputs_is_skipped_with_a_note_but_named_one_is_an_error(
        ws: Workspace, tmp_path: Path, mlp_onnx: Path) -> None:
    from devtrack.builders.onnx_models import build_mlp

    five = build_mlp(tmp_path / "five.onnx", in_features=16, hidden=(8,), classes=5)
    _register(ws, five, "1")
    _register(ws, mlp_onnx, "2", parent="1")
    add_dataset(ws, _digits(tmp_path), "digits")
    release = get_release(ws, "kws@2")
    plan = resolve_evaluation(ws, release, dataset="digits")
    assert plan is not None and plan.reference is None
    assert "fidelity not measured: parent kws@1" in plan.notes[0]
    with pytest.raises(UsageError, match=r"reference kws@1 cannot be compared with kws@2: its "
                                         r"output 'output' is \(1, 5\), not \(1, 4\)"):
        resolve_evaluation(ws, release, dataset="digits", reference="kws@1")
    with pytest.raises(UsageError, match="--reference needs an evaluation dataset"):
        resolve_evaluation(ws, release, reference="kws@1")


def test_a_default_dataset_that_no_longer_fits_says_where_it_came_from(
        ws: Workspace, tmp_path: Path, mlp_onnx: Path) -> None:
    from devtrack.builders.onnx_models import build_mlp

    _register(ws, mlp_onnx, "1")
    add_dataset(ws, _digits(tmp_path), "digits")
    set_default_dataset(ws, "kws", "digits")
    _register(ws, build_mlp(tmp_path / "wide.onnx", in_features=32, hidden=(8,), classes=4),
              "2")
    with pytest.raises(UsageError, match="it is kws's default dataset: pass --eval NAME or "
                                         "--no-eval"):
        resolve_evaluation(ws, get_release(ws, "kws@2"))
