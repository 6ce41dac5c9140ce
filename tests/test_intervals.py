"""Bootstrap intervals: metrics equal scikit-learn's, intervals cover the truth, resamples keep class counts."""

import numpy as np
import pytest
from sklearn import metrics

from fashion.evaluation.intervals import (
    METRICS,
    bootstrap_intervals,
    confusion_counts,
    confusion_metrics,
    headline,
    stratified_indices,
)


def simulate(rng, n, num_classes, accuracy):
    """Uniformly drawn labels; each prediction right with probability `accuracy`, else a random wrong class."""
    labels = rng.integers(0, num_classes, n)
    wrong = (labels + rng.integers(1, num_classes, n)) % num_classes
    return labels, np.where(rng.random(n) < accuracy, labels, wrong)


def sklearn_scores(labels, predicted, num_classes):
    recall = metrics.recall_score(labels, predicted, labels=np.unique(labels), average=None, zero_division=0)
    return {
        "accuracy": metrics.accuracy_score(labels, predicted),
        "balanced_accuracy": float(np.mean(recall)),
        "macro_f1": metrics.f1_score(labels, predicted, labels=list(range(num_classes)), average="macro",
                                     zero_division=0),
    }


def random_cases():
    """(labels, predicted, num_classes): random ones, a class never predicted, a class absent from labels."""
    rng = np.random.default_rng(7)
    cases = [(*simulate(rng, n, k, acc), k) for n, k, acc in [(50, 3, 0.7), (300, 5, 0.5), (1000, 10, 0.9)]]
    labels = rng.integers(0, 4, 120)
    cases.append((labels, np.where(labels == 2, 0, labels), 4))  # class 2 never predicted
    labels = rng.choice([0, 1, 3], 120)
    cases.append((labels, rng.integers(0, 4, 120), 4))  # class 2 absent from labels, but predicted
    labels = rng.choice([0, 2], 60)
    cases.append((labels, rng.choice([0, 1], 60), 4))  # classes absent, never predicted, or both
    cases.append((np.array([1, 1, 1]), np.array([0, 0, 0]), 3))  # every score 0
    return cases


# --- the metrics -----------------------------------------------------------------------------

@pytest.mark.parametrize("labels, predicted, num_classes", random_cases())
def test_confusion_metrics_equal_scikit_learn(labels, predicted, num_classes):
    expected = sklearn_scores(labels, predicted, num_classes)
    vectorised = confusion_metrics(confusion_counts(labels, predicted, num_classes))
    scores = headline(labels, predicted, num_classes)

    assert set(scores) == set(METRICS)
    for name in METRICS:
        assert vectorised[name] == pytest.approx(expected[name], abs=1e-9)
        assert scores[name] == pytest.approx(expected[name], abs=1e-9)
        assert type(scores[name]) is float


def test_batched_confusion_counts_equal_one_at_a_time():
    labels, predicted, _ = random_cases()[1]
    index = stratified_indices(labels, 7, np.random.default_rng(0))
    batched = confusion_metrics(confusion_counts(labels[index], predicted[index], 5))
    for row in range(7):
        single = confusion_metrics(confusion_counts(labels[index[row]], predicted[index[row]], 5))
        for name in METRICS:
            assert batched[name][row] == pytest.approx(single[name], abs=1e-12)


# --- coverage --------------------------------------------------------------------------------

TRIALS = 200


@pytest.fixture(scope="module")
def coverage():
    """Share of TRIALS seeded simulations (true accuracy and balanced accuracy 0.8) whose interval covers 0.8."""
    covered = {"accuracy": 0, "balanced_accuracy": 0}
    for trial in range(TRIALS):
        rng = np.random.default_rng(1000 + trial)
        num_classes = 3 + trial % 3
        labels, predicted = simulate(rng, 200, num_classes, 0.8)
        intervals = bootstrap_intervals(labels, predicted, num_classes, resamples=500, seed=trial)
        for name in covered:
            lo, hi = intervals[name]
            covered[name] += lo <= 0.8 <= hi
    return {name: count / TRIALS for name, count in covered.items()}


def test_accuracy_interval_covers_the_true_accuracy_about_95_percent_of_the_time(coverage):
    assert 0.90 <= coverage["accuracy"] <= 0.99, coverage


def test_balanced_accuracy_interval_covers_the_true_value_about_95_percent_of_the_time(coverage):
    assert 0.90 <= coverage["balanced_accuracy"] <= 0.99, coverage


# --- shape of the intervals ------------------------------------------------------------------

def test_same_seed_same_intervals_other_seed_other_intervals():
    labels, predicted = simulate(np.random.default_rng(3), 400, 4, 0.75)
    first = bootstrap_intervals(labels, predicted, 4, resamples=300, seed=5)

    assert bootstrap_intervals(labels, predicted, 4, resamples=300, seed=5) == first
    assert bootstrap_intervals(labels, predicted, 4, resamples=300, seed=6) != first


def test_intervals_are_rounded_floats_around_the_point_estimate():
    labels, predicted = simulate(np.random.default_rng(4), 500, 5, 0.7)
    intervals = bootstrap_intervals(labels, predicted, 5, resamples=500)
    scores = headline(labels, predicted, 5)

    assert set(intervals) == set(METRICS)
    for name in METRICS:
        lo, hi = intervals[name]
        assert type(lo) is float and type(hi) is float
        assert lo == round(lo, 6) and hi == round(hi, 6)
        assert 0 <= lo <= scores[name] <= hi <= 1


def test_a_higher_level_gives_a_wider_interval():
    labels, predicted = simulate(np.random.default_rng(8), 300, 3, 0.8)
    narrow = bootstrap_intervals(labels, predicted, 3, resamples=500, level=0.5)["accuracy"]
    wide = bootstrap_intervals(labels, predicted, 3, resamples=500, level=0.99)["accuracy"]
    assert wide[0] < narrow[0] <= narrow[1] < wide[1]


def test_intervals_narrow_as_the_test_split_grows():
    rng = np.random.default_rng(9)
    widths = {}
    for n in (100, 2000):
        intervals = bootstrap_intervals(*simulate(rng, n, 4, 0.8), 4, resamples=500)
        widths[n] = {name: hi - lo for name, (lo, hi) in intervals.items()}
    for name in METRICS:
        assert widths[2000][name] < widths[100][name] / 2


def test_perfect_predictions_give_a_point_interval():
    labels = np.repeat([0, 1, 2], 20)
    intervals = bootstrap_intervals(labels, labels, 3, resamples=100)
    assert intervals == {name: [1.0, 1.0] for name in METRICS}


# --- stratification ------------------------------------------------------------------------

def test_every_resample_keeps_the_class_of_every_position():
    labels = np.array([2, 0, 0, 1, 2, 2, 2, 0, 1, 2, 4])  # class 3 absent, class 4 a single image
    index = stratified_indices(labels, 50, np.random.default_rng(0))

    assert index.shape == (50, len(labels))
    assert (labels[index] == labels).all()
    for row in index:
        assert (np.bincount(labels[row], minlength=5) == np.bincount(labels, minlength=5)).all()
    assert len({tuple(row) for row in index}) > 1  # resamples differ: drawn with replacement


def test_resamples_draw_within_a_class_with_replacement():
    labels = np.zeros(10, dtype=int)
    index = stratified_indices(labels, 200, np.random.default_rng(1))
    assert set(index.ravel()) == set(range(10))
    assert any(len(set(row)) < 10 for row in index)


# --- edges ---------------------------------------------------------------------------------

def test_zero_resamples_give_none():
    assert bootstrap_intervals([0, 1, 1], [0, 1, 0], 2, resamples=0) is None


@pytest.mark.parametrize("call", [
    lambda: bootstrap_intervals([], [], 3),
    lambda: headline(np.array([], dtype=int), np.array([], dtype=int), 3),
])
def test_empty_input_is_a_clear_error(call):
    with pytest.raises(ValueError, match="empty"):
        call()


@pytest.mark.parametrize("labels, predicted, num_classes, resamples, level, message", [
    ([0, 1], [0], 2, 10, 0.95, "2 labels but 1 predictions"),
    ([0, 2], [0, 1], 2, 10, 0.95, "0..1"),
    ([0, 1], [0, -1], 2, 10, 0.95, "0..1"),
    ([0.0, 1.0], [0, 1], 2, 10, 0.95, "integer"),
    ([0, 1], [0, 1], 2, -1, 0.95, "resamples"),
    ([0, 1], [0, 1], 2, 10, 1.5, "level"),
])
def test_bad_input_is_a_clear_error(labels, predicted, num_classes, resamples, level, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_intervals(labels, predicted, num_classes, resamples=resamples, level=level)
