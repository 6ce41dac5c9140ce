"""The baseline every head has to beat: a logistic regression on the same cached features.

Standardised features, `class_weight="balanced"` (the imbalance handled by weighting, not SMOTE),
scikit-learn's defaults otherwise. The evaluate stage scores it on the test split beside the head,
and cross-validation scores it on the same folds; a head that does not beat it beyond the
intervals adds nothing.
"""

import warnings


def fit_baseline(features, labels, seed):
    """A fitted scikit-learn pipeline (StandardScaler, LogisticRegression) with predict_proba.

    The solver runs on one BLAS thread: its matrices (a few hundred images by a few hundred features) are far
    too small to share, and OpenBLAS's threads waiting for each other made the fit up to 100 times slower
    (11 s instead of 0.1 s for the default run's features on 2 busy cores).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(),
                          LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed))
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # Near-separable features (a few hundred photos, a thousand dimensions) converge slowly;
        # the fit after max_iter is still the baseline, and saying so on every fold is noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, labels)
    return model


def baseline_probabilities(model, features, num_classes):
    """(n, num_classes) probabilities; a class the baseline never saw in training gets 0."""
    import numpy as np

    out = np.zeros((len(features), num_classes), dtype=np.float64)
    out[:, model.classes_] = model.predict_proba(features)
    return out
