"""Input layout (core): shapes and dtypes checked from specs alone, before any value exists."""

from __future__ import annotations

import numpy as np
import pytest

from devtrack.core.input_layout import MAX_INPUT_BYTES, input_layout
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.summary import TensorInfo
from devtrack.errors import UsageError

VAD = [TensorInfo("input", ["batch", "samples"], "float32"), TensorInfo("sr", [], "int64")]


def test_layout_resolves_dynamic_dimensions_and_scalars_from_specs() -> None:
    layout = input_layout(VAD, [InputSpec("input", (1, 512))], [FillSpec("sr", 16000)])
    assert layout == {"input": ((1, 512), np.dtype("float32")), "sr": ((), np.dtype("int64"))}


def test_inputs_past_the_size_limit_are_refused_without_allocating_them() -> None:
    side = int((MAX_INPUT_BYTES // 4) ** 0.5) + 1  # one float32 input just over the limit
    huge = [TensorInfo("x", [side, side], "float32")]
    with pytest.raises(UsageError, match=r"x=\d+x\d+\) would take 1\.0 GiB"):
        input_layout(huge, [], [])
    assert input_layout([TensorInfo("x", [side - 1, side - 1], "float32")], [], [])


def test_a_fill_for_an_input_the_model_lacks_names_the_inputs() -> None:
    with pytest.raises(UsageError, match="'rate', which is not an input of the model; its "
                                         "inputs are: input, sr"):
        input_layout(VAD, [InputSpec("input", (1, 512))], [FillSpec("rate", 1)])
