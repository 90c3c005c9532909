"""What changed between two releases: provenance, config keys, operators, weights and size."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from devtrack.core.diff import diff_config, diff_ops, diff_releases, flatten_config
from devtrack.core.release import Release
from devtrack.core.summary import ModelSummary, TensorInfo


def make_release(version: str = "1.0", **changes: Any) -> Release:
    summary = ModelSummary(
        format="onnx", inputs=[TensorInfo("input", [1, 16], "float32")],
        outputs=[TensorInfo("probs", [1, 4], "float32")], ops={"MatMul": 2, "Relu": 1},
        params=1000, weight_dtypes={"float32": 1000}, quantization="none",
        opset="ai.onnx:17", producer="devtrack")
    release = Release(
        id=1, model="kws", version=version, sha256="a" * 64, format="onnx", size_bytes=4000,
        created_at="2024-01-01T00:00:00Z", status="candidate", parent=None, notes="",
        data_version="v1", data_sha256="d" * 64, config={"lr": 0.1, "opt": {"name": "adam"}},
        run_id="run-1", tags={}, input_specs=[], fills=[], source_name="m.onnx",
        git_commit="c" * 40, git_dirty=False, created_by="tester", host="h",
        devtrack_version="0", summary=summary)
    summary_changes = {k: changes.pop(k) for k in list(changes)
                       if k in ("ops", "params", "quantization", "weight_dtypes", "inputs")}
    if summary_changes:
        changes["summary"] = replace(summary, **summary_changes)
    return replace(release, **changes)


def test_identical_bytes_and_provenance_diff_as_unchanged() -> None:
    diff = diff_releases(make_release("1.0"), make_release("1.1"))
    assert diff.same_artifact
    assert diff.changed_fields == []
    assert diff.config.empty and diff.ops.empty
    assert diff.size_abs == 0 and diff.size_rel == 0.0
    assert diff.unchanged


def test_provenance_changes_are_listed_by_name() -> None:
    a = make_release("1.0")
    b = make_release("1.1", sha256="b" * 64, git_commit="e" * 40, git_dirty=True,
                     data_version="v2", parent="1.0", quantization="int8 dynamic",
                     params=250, size_bytes=1000)
    diff = diff_releases(a, b)
    changed = {f.name: (f.a, f.b) for f in diff.changed_fields}
    assert changed["code commit"] == ("c" * 40, "e" * 40)
    assert changed["dirty tree"] == (False, True)
    assert changed["data version"] == ("v1", "v2")
    assert changed["parent"] == (None, "1.0")
    assert changed["quantization"] == ("none", "int8 dynamic")
    assert changed["params"] == (1000, 250)
    assert "data sha256" not in changed
    assert not diff.same_artifact and not diff.unchanged
    assert diff.size_abs == -3000
    assert diff.size_rel == pytest.approx(-0.75)
    assert diff.get("format").changed is False


def test_config_keys_are_flattened_to_dotted_paths() -> None:
    assert flatten_config({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "epochs": 3, "aug": {}}) \
        == {"opt.lr": 0.1, "opt.betas": [0.9, 0.99], "epochs": 3, "aug": {}}
    assert flatten_config(None) == {}


def test_config_diff_reports_added_removed_and_changed_keys() -> None:
    diff = diff_config({"lr": 0.1, "opt": {"name": "adam", "eps": 1e-8}, "seed": 1},
                       {"lr": 0.05, "opt": {"name": "adam", "wd": 0.01}, "seed": 1})
    assert diff.added == {"opt.wd": 0.01}
    assert diff.removed == {"opt.eps": 1e-8}
    assert diff.changed == {"lr": (0.1, 0.05)}
    assert diff_config(None, {"a": 1}).added == {"a": 1}
    assert diff_config({"a": 1}, {"a": 1}).empty


def test_ops_diff_counts_added_removed_and_changed_operators() -> None:
    diff = diff_ops({"MatMul": 2, "Relu": 2, "Softmax": 1}, {"MatMul": 4, "Relu": 2, "Gelu": 2})
    assert diff.added == {"Gelu": 2}
    assert diff.removed == {"Softmax": 1}
    assert diff.changed == {"MatMul": (2, 4)}
    assert (diff.nodes_a, diff.nodes_b) == (5, 8)


def test_release_diff_to_dict_is_plain_json_data() -> None:
    import json

    b = make_release("2.0", sha256="b" * 64, config={"lr": 0.2}, ops={"MatMul": 3})
    data = diff_releases(make_release(), b).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["config"]["changed"] == {"lr": {"a": 0.1, "b": 0.2}}
    assert data["config"]["removed"] == {"opt.name": "adam"}
    assert data["ops"]["removed"] == {"Relu": 1}
    assert data["size"] == {"a_bytes": 4000, "b_bytes": 4000, "abs_bytes": 0, "rel": 0.0}
