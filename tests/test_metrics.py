"""Accuracy, regression error, fidelity and NaN/Inf counting against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devtrack.core.metrics import (
    NO_PREDICTION,
    classification_metrics,
    count_nonfinite,
    fidelity,
    finite_or_none,
    regression_metrics,
    top1_predictions,
    top_k_correct,
)
from devtrack.core.significance import wilson_interval

SCORES = np.array([
    [0.1, 0.7, 0.2],  # 1
    [0.8, 0.1, 0.1],  # 0
    [0.2, 0.3, 0.5],  # 2
    [0.4, 0.4, 0.2],  # tie: lower index wins -> 0
])


def test_top1_is_the_argmax_with_ties_to_the_lower_index() -> None:
    assert top1_predictions(SCORES).tolist() == [1, 0, 2, 0]
    assert top1_predictions(SCORES).dtype == np.int32


def test_accuracy_counts_correct_top1_and_gives_the_wilson_interval() -> None:
    result = classification_metrics(SCORES, [1, 0, 1, 0])
    assert (result.n, result.correct, result.accuracy) == (4, 3, 0.75)
    assert result.accuracy_ci == wilson_interval(3, 4)
    low, high = result.accuracy_ci
    assert 0.0 < low < 0.75 < high < 1.0
    assert result.top5 is None  # 3 classes: top-5 would be trivially 1


def test_top5_counts_a_label_among_the_five_highest_scores() -> None:
    scores = np.tile(np.arange(10, dtype=np.float32), (3, 1))  # class 9 highest, 0 lowest
    labels = [9, 5, 4]
    assert top_k_correct(scores, labels, 5).tolist() == [True, True, False]
    result = classification_metrics(scores, labels)
    assert result.accuracy == pytest.approx(1 / 3)
    assert result.top5 == pytest.approx(2 / 3)


def test_a_sample_with_nan_scores_has_no_prediction_and_is_never_correct() -> None:
    scores = SCORES.copy()
    scores[0, 2] = np.nan
    assert top1_predictions(scores).tolist() == [NO_PREDICTION, 0, 2, 0]
    assert classification_metrics(scores, [1, 0, 2, 0]).correct == 3
    assert not top_k_correct(scores, [1, 0, 2, 0], 2)[0]


@pytest.mark.parametrize(("labels", "message"), [
    ([1, 0, 2], "3 labels for 4 samples"),
    ([0.5, 1, 2, 0], "integers"),
])
def test_bad_labels_are_rejected(labels: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(SCORES, labels)


def test_regression_mae_and_rmse_match_hand_values() -> None:
    outputs = np.array([[1.0], [2.0], [4.0]])
    targets = np.array([1.0, 3.0, 2.0])
    result = regression_metrics(outputs, targets)
    assert result.mae == pytest.approx(1.0)
    assert result.rmse == pytest.approx(math.sqrt(5 / 3))


def test_regression_with_nan_outputs_reports_no_error_value() -> None:
    result = regression_metrics([[np.nan], [1.0]], [[0.0], [1.0]])
    assert result.mae is None and result.rmse is None


def test_regression_refuses_targets_of_another_size() -> None:
    with pytest.raises(ValueError, match="2 values per sample, targets 1"):
        regression_metrics(np.zeros((3, 2)), np.zeros(3))


def test_fidelity_of_outputs_with_themselves_is_exact() -> None:
    rng = np.random.default_rng(0)
    outs = [rng.standard_normal((50, 1, 10)).astype(np.float32),
            rng.standard_normal((50, 3)).astype(np.float32)]
    result = fidelity(outs, [o.copy() for o in outs])
    assert result.max_abs_err == 0.0 and result.mean_abs_err == 0.0
    assert result.cosine == 1.0 and result.top1_agreement == 1.0
    assert result.compared_values == 50 * 13 and result.skipped_values == 0


def test_fidelity_measures_error_cosine_and_top1_agreement() -> None:
    candidate = [np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])]
    reference = [np.array([[0.0, 1.0], [0.0, 1.0], [3.0, 4.5]])]
    result = fidelity(candidate, reference)
    assert result.max_abs_err == pytest.approx(1.0)
    assert result.mean_abs_err == pytest.approx((1 + 1 + 0 + 1 + 0 + 0.5) / 6)
    cos3 = (9 + 18) / (5 * math.hypot(3, 4.5))
    assert result.cosine == pytest.approx((0.0 + 1.0 + cos3) / 3)
    assert result.top1_agreement == pytest.approx(2 / 3)


def test_fidelity_skips_nan_values_and_counts_them() -> None:
    candidate = [np.array([[np.nan, 1.0], [2.0, 2.0]])]
    reference = [np.array([[0.0, 1.0], [2.5, 2.0]])]
    result = fidelity(candidate, reference)
    assert result.skipped_values == 1 and result.compared_values == 3
    assert result.max_abs_err == pytest.approx(0.5)
    assert result.top1_agreement == pytest.approx(0.5)  # the NaN sample cannot agree


def test_fidelity_of_single_value_outputs_has_no_top1_agreement() -> None:
    result = fidelity([np.ones((4, 1))], [np.ones((4, 1)) * 1.5])
    assert result.top1_agreement is None and result.max_abs_err == pytest.approx(0.5)


def test_fidelity_refuses_different_output_sizes() -> None:
    with pytest.raises(ValueError, match="4 values per sample vs 5"):
        fidelity([np.zeros((2, 4))], [np.zeros((2, 5))])


def test_nonfinite_counts_nan_inf_and_samples() -> None:
    out = np.zeros((5, 1, 4), dtype=np.float32)
    out[1, 0, 2] = np.nan
    out[3, 0, :2] = np.inf
    found = count_nonfinite([out, np.ones((5, 2), dtype=np.int64)])
    assert (found.nan, found.inf, found.values, found.samples) == (1, 2, 3, 2)
    assert found.flagged and "NaN and Inf" in found.describe()
    assert not count_nonfinite([np.zeros((3, 2))]).flagged


@pytest.mark.parametrize(("value", "expected"), [
    (1.5, 1.5), (float("nan"), None), (float("inf"), None), (None, None)])
def test_finite_or_none_keeps_json_free_of_nan(value: float | None,
                                               expected: float | None) -> None:
    assert finite_or_none(value) == expected
