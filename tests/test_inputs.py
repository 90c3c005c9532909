"""Benchmark inputs: deterministic, dtype-sensible, and clear errors for missing specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devtrack.bench.inputs import SMALL_INT_HIGH, make_inputs
from devtrack.core.inputspec import FillSpec, InputSpec, parse_fill_spec, parse_input_spec
from devtrack.core.summary import TensorInfo
from devtrack.errors import UsageError
from devtrack.runtimes import RuntimeOptions, open_session

VAD = [TensorInfo("input", ["batch", "samples"], "float32"), TensorInfo("sr", [], "int64")]


def test_same_seed_gives_the_same_arrays_and_another_seed_does_not() -> None:
    inputs = [TensorInfo("image", [1, 3, 8, 8], "float32"), TensorInfo("ids", [1, 5], "int64")]
    a = make_inputs(inputs, [], [], seed=0)
    b = make_inputs(inputs, [], [], seed=0)
    c = make_inputs(inputs, [], [], seed=1)
    for name in ("image", "ids"):
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["image"], c["image"])


def test_an_input_keeps_its_values_when_another_input_is_added() -> None:
    one = make_inputs([TensorInfo("x", [4, 4], "float32")], [], [])
    two = make_inputs([TensorInfo("extra", [2], "float32"), TensorInfo("x", [4, 4], "float32")],
                      [], [])
    np.testing.assert_array_equal(one["x"], two["x"])


@pytest.mark.parametrize("dtype, low, high", [
    ("float32", -5.0, 5.0),
    ("float16", -5.0, 5.0),
    ("int8", -128, 127),
    ("uint8", 0, 255),
    ("int32", 0, SMALL_INT_HIGH - 1),
    ("int64", 0, SMALL_INT_HIGH - 1),
    ("bool", 0, 1),
])
def test_values_suit_the_dtype(dtype: str, low: float, high: float) -> None:
    (arr,) = make_inputs([TensorInfo("x", [64, 64], dtype)], [], []).values()
    assert arr.dtype == np.dtype(dtype)
    assert arr.shape == (64, 64) and arr.flags.c_contiguous
    assert arr.min() >= low and arr.max() <= high
    if dtype in ("int8", "uint8"):  # the full range is used, not a corner of it
        assert arr.min() == low and arr.max() == high
    if dtype.startswith("float"):
        assert 0.3 < float(arr.astype(np.float64).std()) < 0.7


def test_a_dynamic_dimension_without_a_spec_names_the_input_and_the_flag() -> None:
    with pytest.raises(UsageError) as info:
        make_inputs(VAD, [], [FillSpec("sr", 16000)])
    assert str(info.value) == ("input 'input' has dynamic shape ['batch', 'samples']; "
                               "give a shape with --input input=1x<samples>")


def test_a_scalar_without_a_fill_asks_for_one() -> None:
    with pytest.raises(UsageError, match=r"'sr' is a scalar int64.*--fill sr=VALUE"):
        make_inputs(VAD, [InputSpec("input", (1, 512))], [])


def test_specs_and_fills_give_shape_and_value() -> None:
    feeds = make_inputs(VAD, [parse_input_spec("input=2x512")], [parse_fill_spec("sr=16000")])
    assert feeds["input"].shape == (2, 512) and feeds["input"].dtype == np.float32
    assert feeds["sr"].shape == () and feeds["sr"].dtype == np.int64 and int(feeds["sr"]) == 16000


def test_an_explicit_scalar_spec_gets_a_random_value() -> None:
    feeds = make_inputs(VAD, [InputSpec("input", (1, 8)), InputSpec("sr", ())], [])
    assert feeds["sr"].shape == () and 0 <= int(feeds["sr"]) < SMALL_INT_HIGH


@pytest.mark.parametrize("specs, fills, match", [
    ([InputSpec("audio", (1, 8))], [], r"--input names 'audio'.*inputs are: input, sr"),
    ([InputSpec("input", (1, 8))], [FillSpec("rate", 1)], r"--fill names 'rate'"),
    ([InputSpec("input", (1, 8, 2))], [FillSpec("sr", 1)], r"has 3 dimension\(s\)"),
    ([InputSpec("input", (1, 8), "int8")], [FillSpec("sr", 1)], r"dtype int8.*float32"),
    ([InputSpec("input", (1, 8))], [FillSpec("sr", 1.5)], r"give an integer"),
    ([InputSpec("input", (1, 8))], [FillSpec("sr", 10**30)], r"out of range"),
    ([InputSpec("input", (1, 8)), InputSpec("input", (1, 9))], [FillSpec("sr", 1)], r"twice"),
])
def test_specs_that_do_not_fit_are_usage_errors(specs: list[InputSpec], fills: list[FillSpec],
                                                 match: str) -> None:
    with pytest.raises(UsageError, match=match):
        make_inputs(VAD, specs, fills)


def test_a_spec_may_not_change_a_fixed_dimension() -> None:
    with pytest.raises(UsageError, match=r"keep its fixed sizes"):
        make_inputs([TensorInfo("x", [1, 16], "float32")], [InputSpec("x", (1, 32))], [])


def test_generated_inputs_run_on_the_real_dynamic_model(dynamic_onnx: Path) -> None:
    session = open_session(dynamic_onnx, "onnx", RuntimeOptions())
    feeds = make_inputs(session.inputs, [InputSpec("input", (1, 512))], [FillSpec("sr", 16000)])
    (out,) = session.run(feeds)
    np.testing.assert_allclose(out, feeds["input"].mean(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-7)
