"""class_weight as scikit-learn defines it, in fastopt.fit and LogisticRegression."""

import numpy as np
import pytest

import fastopt as fo

sklearn_linear = pytest.importorskip("sklearn.linear_model")
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402


def imbalanced(n=300, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    scores = X @ rng.standard_normal((3, classes)) + np.linspace(0, 2.5, classes)
    y = np.argmax(scores + rng.standard_normal(scores.shape), axis=1)
    return X, np.array(["a", "b", "c", "d"])[y]


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("class_weight", ["balanced", {"a": 3.0}, {"a": 0.5, "b": 2.0}])
def test_class_weight_equals_the_sample_weights_sklearn_derives(classes, class_weight):
    X, y = imbalanced(classes=classes)
    options = dict(model="logistic" if classes == 2 else "softmax", optimizer="newton",
                   epochs=50, tol=1e-12, penalty="l2", alpha=1e-2)
    with_class = fo.fit(X, y, class_weight=class_weight, **options)
    by_rows = fo.fit(X, y, sample_weight=compute_sample_weight(class_weight, y), **options)
    np.testing.assert_allclose(with_class.coef_, by_rows.coef_, rtol=1e-10)
    plain = fo.fit(X, y, **options)
    assert not np.allclose(with_class.coef_, plain.coef_)


def test_class_weight_multiplies_sample_weight():
    X, y = imbalanced()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    options = dict(model="logistic", optimizer="newton", epochs=50, tol=1e-12)
    both = fo.fit(X, y, class_weight="balanced", sample_weight=sw, **options)
    product = fo.fit(X, y, sample_weight=sw * compute_sample_weight("balanced", y), **options)
    np.testing.assert_allclose(both.coef_, product.coef_, rtol=1e-10)


def test_the_estimator_matches_sklearn_on_its_optimum():
    X, y = imbalanced(classes=2)
    n = len(y)
    ours = fo.LogisticRegression(optimizer="newton", class_weight="balanced", penalty="l2",
                                 alpha=1.0 / n, standardize=False, tol=1e-12, epochs=50).fit(X, y)
    theirs = sklearn_linear.LogisticRegression(class_weight="balanced", tol=1e-12).fit(X, y)
    # sklearn's C scales the loss sum; fastopt's weights have mean 1 ("balanced" already has)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-6)
    assert ours.get_params()["class_weight"] == "balanced"


def test_bad_class_weights_are_refused():
    X, y = imbalanced()
    for bad, message in (({"z": 2.0}, "not classes of y"), ({"a": -1.0}, ">= 0"),
                         ("auto", "'balanced' or a dict")):
        with pytest.raises(ValueError, match=message):
            fo.fit(X, y, model="logistic", class_weight=bad)
    with pytest.raises(ValueError, match="classification models"):
        fo.fit(X, np.arange(len(y), dtype=float), class_weight="balanced")
    est = fo.LogisticRegression(class_weight="balanced")
    with pytest.raises(ValueError, match="partial_fit"):
        est.partial_fit(X, y, classes=["a", "b"])
    fo.LogisticRegression(class_weight={"a": 2.0}, epochs=2, tol=None).partial_fit(
        X, y, classes=["a", "b"])
