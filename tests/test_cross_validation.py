"""LogisticRegressionCV and LinearRegressionCV: the same choices and scores as scikit-learn's
LogisticRegressionCV and RidgeCV on the same folds, refit=False, the path against separate
fits, scikit-learn's estimator checks, and errors that name the option."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegressionCV as SklearnLogisticCV  # noqa: E402
from sklearn.linear_model import Ridge, RidgeCV  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastopt as fo  # noqa: E402
from fastopt.cross_validation import LinearRegressionCV, LogisticRegressionCV  # noqa: E402

EXACT = dict(standardize=False, tol=1e-10, epochs=10_000)  # scikit-learn's objective, solved


def classification(classes, n=300, seed=0):
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_redundant=1,
                               n_classes=classes, flip_y=0.1, random_state=seed)


def sklearn_cv(**options):
    return SklearnLogisticCV(l1_ratios=(0.0,), use_legacy_attributes=False, tol=1e-10,
                             max_iter=10_000, **options)


# -- the same as scikit-learn ---------------------------------------------------------------------

@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_logistic_cv_matches_scikit_learn(classes, scoring):
    X, y = classification(classes)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    theirs = sklearn_cv(Cs=10, cv=folds, scoring=scoring).fit(X, y)
    ours = LogisticRegressionCV(Cs=10, cv=folds, scoring=scoring, **EXACT).fit(X, y)
    np.testing.assert_array_equal(ours.Cs_, theirs.Cs_)
    assert ours.C_ == theirs.C_
    assert ours.scores_.shape == (5, 10)
    np.testing.assert_allclose(ours.scores_, theirs.scores_[:, 0, :], rtol=0, atol=1e-4)
    rows = 1 if classes == 2 else classes
    assert ours.coefs_paths_.shape == (5, 10, rows, X.shape[1] + 1)
    np.testing.assert_allclose(ours.coefs_paths_, theirs.coefs_paths_[:, 0], atol=1e-5)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-5)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.alpha_, 1.0 / (ours.C_ * len(X)))
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-6)


def test_logistic_cv_matches_scikit_learn_with_weights():
    """C is per total weight (sample times class weights) of the training rows; 'balanced'
    counts the classes of all rows once; the test rows' scores are weighted."""
    X, y = classification(3, seed=1)
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(X))
    folds = list(StratifiedKFold(4).split(X, y))
    theirs = sklearn_cv(Cs=[0.01, 0.1, 1.0, 10.0], cv=folds, scoring="neg_log_loss",
                        class_weight="balanced").fit(X, y, sample_weight=weights)
    ours = LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=folds, scoring="neg_log_loss",
                                class_weight="balanced", **EXACT).fit(X, y,
                                                                      sample_weight=weights)
    assert ours.C_ == theirs.C_
    np.testing.assert_allclose(ours.scores_, theirs.scores_[:, 0, :], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)


def test_logistic_cv_refit_false_matches_scikit_learn():
    X, y = classification(2, seed=3)
    folds = StratifiedKFold(5)
    theirs = sklearn_cv(Cs=8, cv=folds, scoring="neg_log_loss", refit=False).fit(X, y)
    ours = LogisticRegressionCV(Cs=8, cv=folds, scoring="neg_log_loss", refit=False,
                                **EXACT).fit(X, y)
    best = np.argmax(ours.scores_, axis=1)
    assert len(set(best.tolist())) > 1, "the folds should disagree for this test to mean much"
    assert ours.C_ == pytest.approx(theirs.C_, rel=1e-12)
    assert ours.C_ == pytest.approx(ours.Cs_[best].mean(), rel=1e-12)
    averaged = ours.coefs_paths_[np.arange(5), best].mean(axis=0)
    np.testing.assert_allclose(ours.coef_[0], averaged[0, :-1], rtol=1e-12)
    np.testing.assert_allclose(ours.intercept_, averaged[:, -1], rtol=1e-12)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    assert ours.refit_n_iter_ is None
    refitted = LogisticRegressionCV(Cs=8, cv=folds, scoring="neg_log_loss", **EXACT).fit(X, y)
    assert refitted.refit_n_iter_ > 0
    assert not np.allclose(refitted.coef_, ours.coef_, atol=1e-3)


def regression(n=200, d=30, seed=0):
    """More features than the folds can pin down: the best ridge penalty is inside the grid."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    y = X @ rng.standard_normal(d) * 0.3 + 3.0 + 2.0 * rng.standard_normal(n)
    return X, y


def test_linear_cv_matches_ridge_cv():
    """RidgeCV's alphas a (sum of squares + a |w|^2) are a / S in fastopt's units, S the rows
    of a training fold: 4n/5 with 5 folds of n rows (n a multiple of 5)."""
    X, y = regression()
    n = len(X)
    ridge_alphas = np.logspace(-2, 4, 9)
    theirs = RidgeCV(alphas=ridge_alphas, cv=5).fit(X, y)
    best = int(np.flatnonzero(ridge_alphas == theirs.alpha_)[0])
    assert 0 < best < len(ridge_alphas) - 1, "the test data should choose inside the grid"
    ours = LinearRegressionCV(alphas=ridge_alphas / (0.8 * n), cv=5, **EXACT).fit(X, y)
    assert ours.alpha_ == ours.alphas_[best]
    per_fold = np.array([cross_val_score(Ridge(alpha=a), X, y, cv=KFold(5)) for a in
                         ridge_alphas]).T
    np.testing.assert_allclose(ours.scores_, per_fold, rtol=0, atol=1e-8)
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-8)
    # The refit is on all n rows: Ridge's alpha = fastopt's alpha * n.
    refit = Ridge(alpha=ours.alpha_ * n).fit(X, y)
    np.testing.assert_allclose(ours.coef_, refit.coef_, atol=1e-7)
    assert ours.intercept_ == pytest.approx(refit.intercept_, abs=1e-7)
    assert ours.coefs_paths_.shape == (5, 9, X.shape[1] + 1)


def test_logistic_cv_l1_by_default_matches_scikit_learn_saga():
    """penalty="l1" with the default optimizer ("auto": SAGA along the path) against
    scikit-learn's LogisticRegressionCV with saga, both solved tightly. (At C=1e-2 and below every
    coefficient is 0 here, and scikit-learn's saga leaves the intercept short of its optimum,
    the class prior's logit, by up to 3e-4 in the log loss.)"""
    X, y = classification(2)
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    Cs = np.logspace(-1.5, 2, 6)
    theirs = SklearnLogisticCV(Cs=Cs, cv=folds, l1_ratios=(1.0,), solver="saga",
                               scoring="neg_log_loss", use_legacy_attributes=False, tol=1e-10,
                               max_iter=100_000, random_state=0).fit(X, y)
    ours = LogisticRegressionCV(Cs=Cs, cv=folds, penalty="l1", scoring="neg_log_loss",
                                **EXACT).fit(X, y)
    assert ours.C_ == theirs.C_
    np.testing.assert_allclose(ours.scores_, theirs.scores_[:, 0, :], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.coefs_paths_, theirs.coefs_paths_[:, 0], atol=1e-5)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    assert (ours.coef_ == 0).any(), "the test data should give some exact zeros under l1"
    np.testing.assert_array_equal(ours.coef_ == 0, np.abs(theirs.coef_) < 1e-8)


@pytest.mark.parametrize("penalty, l1_ratio", [("l1", 1.0), ("elasticnet", 0.5)])
def test_linear_cv_l1_and_elasticnet_match_scikit_learn(penalty, l1_ratio):
    """fastopt's l1 / elasticnet objective is ElasticNet's: mean half squared residual +
    alpha (l1_ratio |w|_1 + (1 - l1_ratio) |w|^2 / 2), the same alpha."""
    from sklearn.linear_model import ElasticNet, ElasticNetCV
    X, y = regression()
    alphas = np.logspace(-3, 0, 6)
    theirs = ElasticNetCV(alphas=alphas, l1_ratio=l1_ratio, cv=5, tol=1e-12,
                          max_iter=100_000).fit(X, y)
    ours = LinearRegressionCV(alphas=alphas, cv=5, penalty=penalty, l1_ratio=l1_ratio,
                              scoring="neg_mean_squared_error", **EXACT).fit(X, y)
    assert ours.alpha_ == theirs.alpha_
    # ElasticNetCV's mse_path_ lists its alphas from the largest; ours in the given order.
    np.testing.assert_allclose(-ours.scores_, theirs.mse_path_[::-1].T, rtol=1e-6)
    refit = ElasticNet(alpha=theirs.alpha_, l1_ratio=l1_ratio, tol=1e-12,
                       max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, refit.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(refit.intercept_, abs=1e-6)


def test_l1_with_a_smooth_solver_names_the_ones_that_work():
    X, y = classification(2, n=100)
    with pytest.raises(ValueError, match="optimizer='saga'"):
        LogisticRegressionCV(Cs=3, penalty="l1", optimizer="lbfgs").fit(X, y)


# -- how the grid is trained -----------------------------------------------------------------------

def test_path_equals_separate_fits_with_fewer_iterations():
    """The warm-started path reaches each fold's optimum, as a separate fit from zero does,
    in fewer iterations all told (165 against 212 here; 192 when only the solution carries
    over, without L-BFGS's pairs)."""
    X, y = classification(3, n=400)
    folds = list(StratifiedKFold(3).split(X, y))
    alphas = [1.0, 0.1, 1e-2, 1e-3]
    cv = LogisticRegressionCV(alphas=alphas, cv=folds, tol=1e-9, epochs=5000).fit(X, y)
    cold = 0
    for f, (train, _) in enumerate(folds):
        for a, alpha in enumerate(alphas):
            single = fo.LogisticRegression(optimizer=fo.LBFGS(history_size=30), alpha=alpha,
                                           tol=1e-9, epochs=5000).fit(X[train], y[train])
            np.testing.assert_allclose(cv.coefs_paths_[f, a, :, :-1], single.coef_, atol=1e-6)
            np.testing.assert_allclose(cv.coefs_paths_[f, a, :, -1], single.intercept_,
                                       atol=1e-6)
            cold += single.n_iter_
    assert cv.n_iter_.sum() < 0.85 * cold


def test_lbfgs_starts_from_initial_pairs():
    """solvers.lbfgs(initial_pairs=...), the path's hook: the pairs of a solve of a nearby
    objective cut the iterations to the same optimum; a pair with s.y <= 0 is left out."""
    from fastopt.solvers import lbfgs
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    A = Q @ np.diag(np.logspace(0, 3, 20)) @ Q.T
    b = rng.standard_normal(20)
    options = dict(max_iter=500, history_size=30, tolerance_grad=1e-10, tolerance_change=0.0)

    def quadratic(shift):
        return lambda x: (0.5 * x @ A @ x - (b + shift) @ x, A @ x - b - shift)
    first = lbfgs(quadratic(0.0), np.zeros(20), **options)
    assert first.converged and 0 < len(first.pairs) <= 30
    near = quadratic(0.1 * rng.standard_normal(20))
    cold = lbfgs(near, first.x, **options)
    warm = lbfgs(near, first.x, initial_pairs=first.pairs, **options)
    assert cold.converged and warm.converged
    assert warm.n_iter < 0.5 * cold.n_iter
    np.testing.assert_allclose(warm.x, cold.x, atol=1e-9)
    s = np.ones(20)
    ignored = lbfgs(near, first.x, initial_pairs=[(s, -s)], **options)
    np.testing.assert_array_equal(ignored.x, cold.x)
    assert ignored.n_evals == cold.n_evals


@pytest.mark.parametrize("make", [
    lambda: (LogisticRegressionCV, fo.LogisticRegression, classification(2)),
    lambda: (LinearRegressionCV, fo.LinearRegression, regression(d=5)),
], ids=["logistic", "linear"])
def test_first_order_grid_equals_separate_estimators(make):
    """A first-order optimizer: each (fold, alpha) is the fit of the fastopt estimator with the
    same options on the fold's rows, and the refit that estimator on all rows (an elastic net
    on a standardised target re-expressed as the estimator does, once)."""
    cv_class, single_class, (X, y) = make()
    folds = list(KFold(3, shuffle=True, random_state=0).split(X, y))
    options = dict(optimizer="adam", lr=0.05, epochs=15, tol=None, penalty="elasticnet",
                   l1_ratio=0.5,
                   random_state=7)
    alphas = [0.1, 1e-3]
    cv = cv_class(alphas=alphas, cv=folds, **options).fit(X, y)
    for f, (train, _) in enumerate(folds):
        for a, alpha in enumerate(alphas):
            single = single_class(alpha=alpha, **options).fit(X[train], y[train])
            coef = np.atleast_2d(single.coef_)
            np.testing.assert_array_equal(cv.coefs_paths_[f, a, ..., :-1],
                                          coef[0] if cv_class is LinearRegressionCV else coef)
    assert (cv.n_iter_ == 15).all()
    refit = single_class(alpha=cv.alpha_, **options).fit(X, y)
    np.testing.assert_array_equal(cv.coef_, refit.coef_)
    np.testing.assert_array_equal(cv.intercept_, refit.intercept_)


def test_folds_in_threads_give_the_same_results():
    X, y = classification(3)
    one = LogisticRegressionCV(Cs=6, tol=1e-8).fit(X, y)
    two = LogisticRegressionCV(Cs=6, tol=1e-8, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.coefs_paths_, two.coefs_paths_)
    np.testing.assert_array_equal(one.scores_, two.scores_)
    np.testing.assert_array_equal(one.coef_, two.coef_)


def test_standardize_penalises_the_standardised_coefficients():
    """standardize=True (the default) fits each fold as LinearRegression(standardize=True)
    would: features scaled by the fold's own statistics."""
    X, y = regression(d=5)
    X = X * [1.0, 10.0, 100.0, 0.1, 1.0]
    folds = list(KFold(4).split(X))
    cv = LinearRegressionCV(alphas=[0.5], cv=folds, tol=1e-10).fit(X, y)
    train = folds[2][0]
    single = fo.LinearRegression(optimizer="lbfgs", penalty="l2", alpha=0.5,
                                 tol=1e-10).fit(X[train], y[train])
    np.testing.assert_allclose(cv.coefs_paths_[2, 0, :-1], single.coef_, rtol=1e-6)
    raw = LinearRegressionCV(alphas=[0.5], cv=folds, tol=1e-10, standardize=False).fit(X, y)
    assert not np.allclose(raw.coefs_paths_[2, 0], cv.coefs_paths_[2, 0], rtol=1e-2)


def test_convergence_warning_counts_the_fits():
    X, y = classification(2)
    with pytest.warns(fo.ConvergenceWarning, match=r"of the 11 fits reached epochs=2"):
        LogisticRegressionCV(Cs=2, tol=1e-12, epochs=2).fit(X, y)


# -- scikit-learn's checks and errors --------------------------------------------------------------

def _expected_failures(estimator):
    if not isinstance(estimator.optimizer, fo.Optimizer):
        return {}
    reason = ("minibatches of weighted rows are not those of repeated rows: a first-order "
              "fit differs (the exact solvers pass)")
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


@parametrize_with_checks([
    LogisticRegressionCV(Cs=4), LinearRegressionCV(alphas=4),
    LogisticRegressionCV(Cs=3, optimizer=fo.Adam(lr=0.05), epochs=50, tol=None,
                         random_state=0),
], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls, option, value", [
    (LogisticRegressionCV, "Cs", 0),
    (LogisticRegressionCV, "Cs", [1.0, -1.0]),
    (LogisticRegressionCV, "Cs", "many"),
    (LogisticRegressionCV, "alphas", []),
    (LinearRegressionCV, "alphas", [np.nan]),
    (LinearRegressionCV, "alphas", -3),
    (LogisticRegressionCV, "cv", "five"),
    (LogisticRegressionCV, "scoring", "accuracy_please"),
    (LinearRegressionCV, "scoring", ["r2", "neg_mean_squared_error"]),
    (LinearRegressionCV, "refit", "yes"),
    (LinearRegressionCV, "penalty", None),
    (LogisticRegressionCV, "penalty", "l3"),
    (LogisticRegressionCV, "l1_ratio", 1.5),
    (LinearRegressionCV, "epochs", 0),
    (LinearRegressionCV, "tol", -1.0),
    (LogisticRegressionCV, "n_jobs", 0),
    (LogisticRegressionCV, "optimizer", "gradient-magic"),
    (LogisticRegressionCV, "class_weight", "even"),
    (LogisticRegressionCV, "standardize", "no"),
])
def test_bad_options_name_the_option_and_keep_the_fit(cls, option, value):
    X, y = classification(2, n=100)
    estimator = cls(Cs=3) if cls is LogisticRegressionCV else cls(alphas=3)
    estimator.fit(X, y)
    before = {key: np.copy(value) for key, value in vars(estimator).items()
              if key.endswith("_") and isinstance(value, (np.ndarray, float))}
    estimator.set_params(**{option: value})
    with pytest.raises(ValueError, match=option if option != "cv" else "cv|cross-validation"):
        estimator.fit(X, y)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(estimator, key), value)


def test_one_class_is_an_error():
    X, _ = classification(2, n=50)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegressionCV().fit(X, np.zeros(len(X)))
