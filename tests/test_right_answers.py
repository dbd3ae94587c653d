"""Issue 22's wrong answers on ordinary inputs, as a user met them (items 1, 3 and 15's
wording; the other items have their tests beside the code they fixed)."""

import warnings

import numpy as np
import pytest

import fastopt as fo

datasets = pytest.importorskip("sklearn.datasets")


def test_a_target_with_a_large_scale_and_offset_is_fitted():
    X, y = datasets.load_diabetes(return_X_y=True)
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    reference = sklearn_linear.LinearRegression().fit(X, 100 * y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fo.ConvergenceWarning)
        est = fo.LinearRegression(random_state=0).fit(X, 100 * y)
    # Before: R^2 -3.6, intercept 279 against 15213.
    assert est.score(X, 100 * y) > reference.score(X, 100 * y) - 0.02
    assert est.intercept_ == pytest.approx(reference.intercept_, rel=0.02)


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_target_standardisation_keeps_the_optimum_and_the_units(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)) * [1.0, 3.0, 0.5, 2.0] + 4.0
    y = 1e4 + 500 * (X @ [1.0, -2.0, 0.5, 0.0]) + 50 * rng.standard_normal(300)
    Xs = (X - X.mean(0)) / X.std(0)
    for penalty, alpha in ((None, 0.0), ("l2", 0.3)):
        options = dict(penalty=penalty, alpha=alpha, backend=backend, epochs=50, tol=1e-12)
        scaled = fo.fit(X, y, optimizer="newton", standardize=True, **options)
        by_hand = fo.fit(Xs, y, optimizer="newton", **options)  # raw target, intercept trained
        np.testing.assert_allclose(scaled.predict(X), by_hand.predict(Xs), rtol=1e-9)
        np.testing.assert_allclose(scaled.history["loss"][-1], by_hand.history["loss"][-1],
                                   rtol=1e-9)  # the loss in the target's units


@pytest.mark.parametrize("penalty", ["l1", "l2", "elasticnet"])
def test_the_penalty_is_re_expressed_for_the_scaled_target(penalty):
    # L(params on the raw target) = scale^2 * L(params on the scaled target), for any params.
    from fastopt import engine
    from fastopt.reference import models
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 3))
    y = 300.0 + 40.0 * rng.standard_normal(80)
    options = dict(model="linear", penalty=penalty, alpha=0.7, l1_ratio=0.3, fit_intercept=False,
                   sample_weight=None)
    raw, _ = engine.prepare(X, y, **options)
    scaled, _ = engine.prepare(X, y, target=(0.0, 40.0), **options)
    w = rng.standard_normal(3)
    raw_value = models.objective(raw.spec, X, raw.y, None, None, None, w * 40.0)[0]
    scaled_value = models.objective(scaled.spec, X, scaled.y, None, None, None, w)[0]
    assert raw_value == pytest.approx(scaled_value * 40.0 ** 2, rel=1e-12)


def test_a_fit_that_blows_up_with_a_finite_loss_is_a_divergence():
    X, y = datasets.load_diabetes(return_X_y=True)
    with pytest.raises(fo.DivergenceError, match="diverged") as info:
        fo.LinearRegression(optimizer="adam", lr=1e6, standardize=False,
                            epochs=50).fit(100 * X, y)
    Xc, yc = datasets.load_breast_cancer(return_X_y=True)
    with pytest.raises(fo.DivergenceError, match="diverged") as info:  # the case
        fo.LogisticRegression(optimizer="adam", lr=100).fit(Xc, yc)
    with pytest.raises(fo.DivergenceError, match="ended at .* more than 2 times") as info:
        fo.fit(Xc, yc, model="logistic", lr=100, optimizer="adam", epochs=30, tol=None,
               batch_size=32, standardize=True, random_state=0)
    assert info.value.result is not None and len(info.value.result.history["loss"]) == 30
    est = fo.LogisticRegression(random_state=0).fit(Xc, yc)
    coef = est.coef_.copy()
    with pytest.raises(fo.DivergenceError):
        est.set_params(optimizer="adam", lr=100, standardize=False).fit(Xc, yc)
    np.testing.assert_array_equal(est.coef_, coef)  # the previous fit is kept


def test_the_convergence_warning_says_how_far_the_fit_got():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, 2.0, 3.0]
    with pytest.warns(fo.ConvergenceWarning) as record:
        fo.fit(X, y, epochs=7)
    message = str(record[0].message)
    assert "did not improve by less than" not in message  # the double negative
    assert "still improving by more than tol=0.0001" in message and " went from " in message
