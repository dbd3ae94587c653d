"""NaN/inf in X without a separate pass over it: the compiled epochs and the column statistics of
standardize=True find it as they read X (Problem.check_finite_later, column_scaling), and the
user still gets the ValueError for bad input, never a DivergenceError or a fitted model."""

import warnings

import numpy as np
import pytest
import sklearn.utils.validation

import fastopt as fo
from fastopt import _backends
from fastopt import _validation as v
from fastopt import _scaling

BACKENDS = ["cpp", "numba", "numpy"]
MESSAGES = {"nan": "Input X contains NaN", "inf": "Input X contains infinity",
            "-inf": "Input X contains infinity"}


def data(model, dtype, n=120, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 2 + 1).astype(dtype)
    classes = {"linear": None, "logistic": 2, "softmax": 3}[model]
    y = X @ rng.standard_normal(d) if classes is None else rng.integers(0, classes, n)
    return X, y


def estimator_for(model, **params):
    return (fo.LinearRegression if model == "linear" else fo.LogisticRegression)(**params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_a_bad_value_anywhere_is_a_value_error(model, backend, dtype):
    rng = np.random.default_rng(1)
    options = [{}, {"standardize": True}, {"early_stopping": True}, {"n_jobs": 2},
               {"batch_size": None}, {"optimizer": "newton"},
               {"optimizer": "newton", "standardize": True}, {"zero_weight": True}]
    for bad in ("nan", "inf", "-inf"):
        for extra in options:
            extra = dict(extra)
            X, y = data(model, dtype)
            row = int(rng.integers(len(X)))
            X[row, rng.integers(X.shape[1])] = float(bad)
            if extra.pop("zero_weight", False):  # a row that counts for nothing still counts
                extra["sample_weight"] = np.ones(len(X))
                extra["sample_weight"][row] = 0.0
            common = dict(epochs=2, tol=None, random_state=0, backend=backend, **extra)
            weights = common.pop("sample_weight", None)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no RuntimeWarning on the way either
                with pytest.raises(ValueError, match=MESSAGES[bad]):
                    fo.fit(X, y, model=model, sample_weight=weights, **common)
                with pytest.raises(ValueError, match=MESSAGES[bad]):
                    estimator_for(model, **common).fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_a_bad_value_in_any_row_of_the_split_is_found(backend):
    # Early stopping never trains on the validation rows: they are checked on their own.
    for row in range(40):
        X, y = data("logistic", np.float64, n=40)
        X[row, 2] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            fo.fit(X, y, model="logistic", early_stopping=True, validation_fraction=0.25,
                   epochs=2, tol=None, random_state=3, backend=backend, batch_size=8)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_bad_input_leaves_a_fitted_estimator_as_it_was(backend):
    X, y = data("logistic", np.float64)
    for standardize in (False, True):
        estimator = fo.LogisticRegression(epochs=2, tol=None, random_state=0, warm_start=True,
                                          backend=backend, standardize=standardize).fit(X, y)
        before = (estimator.coef_.copy(), estimator.intercept_.copy(), estimator.t_)
        bad = X.copy()
        bad[-1, 0] = np.inf
        for call in (estimator.fit, estimator.partial_fit):
            with pytest.raises(ValueError, match="Input X contains infinity"):
                call(bad, y)
            np.testing.assert_array_equal(estimator.coef_, before[0])
            np.testing.assert_array_equal(estimator.intercept_, before[1])
            assert estimator.t_ == before[2]


def test_diverging_fit_on_finite_X_is_still_a_divergence():
    X, y = data("linear", np.float64)
    with pytest.raises(fo.DivergenceError):
        fo.fit(X * 1e150, y, optimizer="sgd", lr=1e10, epochs=3, tol=None, backend="cpp")


@pytest.fixture
def scans_of_X(monkeypatch):
    """Counts the separate NaN/inf checks of 2-D arrays (fastopt's and scikit-learn's)."""
    seen = []

    def counting(original):
        def check(array, *args, **kwargs):
            if np.ndim(array) == 2:
                seen.append(array.shape)
            return original(array, *args, **kwargs)
        return check

    monkeypatch.setattr(v, "assert_all_finite", counting(v.assert_all_finite))
    monkeypatch.setattr(sklearn.utils.validation, "_assert_all_finite",
                        counting(sklearn.utils.validation._assert_all_finite))
    return seen


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_finite_X_is_not_scanned_separately(scans_of_X, backend, standardize):
    X, y = data("logistic", np.float32)
    common = dict(epochs=2, tol=None, random_state=0, backend=backend, standardize=standardize)
    fo.fit(X, y, model="logistic", **common)
    estimator = fo.LogisticRegression(**common).fit(X, y)
    estimator.partial_fit(X, y)
    assert scans_of_X == []
    fo.fit(X, y, model="logistic", **dict(common, backend="numpy"))
    assert len(scans_of_X) == (0 if standardize else 1)  # the reference still checks first


# ---------------------------------------------------------------------------------------------
# The column statistics of standardize=True

def two_pass_moments(X, weights):
    """The definition: weighted mean, then weighted squared deviations, in float64."""
    X = X.astype(np.float64)
    w = np.ones(len(X)) if weights is None else weights
    mean = (w @ X) / w.sum()
    return mean, w @ (X - mean) ** 2


@pytest.mark.skipif(_backends._core is None, reason="needs the compiled module")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d", [(1, 1), (7, 3), (1001, 33), (70, 1000), (5000, 2)])
def test_column_moments_equal_two_passes(n, d, dtype):
    # The blocks of rows (2**15 / d rows) and their four-row sweeps leave remainders here.
    rng = np.random.default_rng(n * d)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.1, 100, d) + rng.uniform(-1e3, 1e3, d))
    X = X.astype(dtype)
    weights = rng.uniform(0, 3, n)
    weights[rng.random(n) < 0.3] = 0.0
    weights[0] = 1.0
    for w in (None, weights):
        mean, m2 = _backends._core.column_moments(X, w)
        expected_mean, expected_m2 = two_pass_moments(X, w)
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m2, expected_m2, rtol=1e-10, atol=1e-9)


@pytest.mark.skipif(_backends._core is None, reason="needs the compiled module")
def test_column_moments_are_non_finite_wherever_X_is():
    rng = np.random.default_rng(2)
    for bad in (np.nan, np.inf, -np.inf):
        for dtype in (np.float32, np.float64):
            X = rng.standard_normal((3000, 7)).astype(dtype)
            row, column = int(rng.integers(3000)), int(rng.integers(7))
            X[row, column] = bad
            weights = np.ones(3000)
            weights[row - row % 8: row - row % 8 + 8] = 0.0  # also a block of weight zero
            for w in (None, weights):
                mean, m2 = _backends._core.column_moments(X, w)
                finite = np.isfinite(mean) & np.isfinite(m2)
                assert not finite[column] and finite.sum() == 6


@pytest.mark.parametrize("compiled", [True, False])
def test_column_scaling_equals_the_definition(monkeypatch, compiled):
    if compiled and _backends._core is None:
        pytest.skip("needs the compiled module")
    column_scaling = (_backends.resolve("cpp").column_scaling if compiled
                      else _scaling.column_scaling)  # the NumPy passes
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2000, 6)) * [1, 10, 1e-3, 0, 5, 1] + [0, 3, 1e4, 7, -2, 0]
    weights = rng.uniform(0.5, 1.5, 2000)
    weights *= len(weights) / weights.sum()
    mean, inv_std = column_scaling(X, weights)
    expected_mean, m2 = two_pass_moments(X, weights)
    expected_inv_std = 1 / np.sqrt(m2 / len(X))
    expected_inv_std[3] = 1.0  # a constant column is only centred
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(inv_std, expected_inv_std, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Labels

@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int8, np.uint8, bool])
@pytest.mark.parametrize("values", [(0, 1), (3, 7), (-2, 5), (0, 1, 2), (1, 1)])
def test_encoded_labels_equal_numpy_unique(values, dtype):
    rng = np.random.default_rng(len(values))
    y = np.array(values)[rng.integers(0, len(values), 200)].astype(dtype)
    if len(np.unique(y)) < 2:
        with pytest.raises(ValueError, match="only one class"):
            v.encode_labels(y)
        return
    classes, indices = v.encode_labels(y)
    expected_classes, expected_indices = np.unique(y, return_inverse=True)
    assert classes.dtype == expected_classes.dtype
    np.testing.assert_array_equal(classes, expected_classes)
    np.testing.assert_array_equal(indices, expected_indices.astype(np.float64))
    assert indices.dtype == np.float64


@pytest.mark.parametrize("y", [
    np.array([0.0, 1.5, 2.0]), np.array([0.0, np.nan, 1.0]), np.array([0.0, np.inf, 1.0]),
    np.array([[0, 1], [1, 0]]), np.array([0.5, 0.25], dtype=np.float32),
    np.array([0, 1], dtype=np.int32), np.array([2.0, -3.0, 2.0]), np.array(["a", "b"]),
    np.array([True, False]), np.array([1e300, 0.0]), [0, 1, 1]])
def test_class_labels_are_judged_as_scikit_learn_judges_them(y):
    """check_class_labels answers the common cases itself: it must agree with
    check_classification_targets on every kind of target."""
    from sklearn.utils.multiclass import check_classification_targets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's own, casting NaN
        try:
            check_classification_targets(y)
        except ValueError as error:
            with pytest.raises(ValueError, match=str(error)[:20]):
                v.check_class_labels(y)
        else:
            v.check_class_labels(y)


@pytest.mark.parametrize("y", [np.arange(6) % 2, np.array([0.0, 2.0, 1.0] * 2)])
def test_ordinary_class_labels_do_not_call_type_of_target(monkeypatch, y):
    import sklearn.utils.multiclass
    monkeypatch.setattr(sklearn.utils.multiclass, "check_classification_targets",
                        lambda y: pytest.fail("the generic check ran"))
    v.check_class_labels(y)
    fo.LogisticRegression().fit(np.arange(12.0).reshape(6, 2), y)


def test_plain_arrays_skip_validate_data_with_the_same_result(monkeypatch):
    """NumPy arrays that validate_data would return unchanged skip it; anything else still
    goes through it. Both record n_features_in_ and drop feature names of an earlier fit."""
    from fastopt import estimators
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    calls = []
    real = estimators.validate_data
    monkeypatch.setattr(estimators, "validate_data",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    est = fo.LogisticRegression().fit(pd.DataFrame(X, columns=list("abc")), y)
    assert calls and list(est.feature_names_in_) == list("abc")
    calls.clear()
    est.fit(X, y)
    assert not calls and est.n_features_in_ == 3 and not hasattr(est, "feature_names_in_")
    for X_other, y_other in [(X.tolist(), y), (np.asfortranarray(X), y), (X.astype(int), y),
                             (X, y.astype(str)), (X, y.tolist())]:
        calls.clear()
        fo.LogisticRegression().fit(X_other, y_other)
        assert calls, "an array validate_data would convert skipped it"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_plain_arrays_are_still_checked_for_nan_and_inf(bad):
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = np.arange(40) % 2
    X[5, 1] = bad
    for optimizer in ["newton", "auto", "adam"]:
        with pytest.raises(ValueError, match="NaN|infinity"):
            fo.LogisticRegression(optimizer=optimizer, standardize=False).fit(X, y)
    y = y.astype(np.float64)
    y[3] = bad
    for estimator in [fo.LinearRegression(), fo.LogisticRegression()]:
        with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
            estimator.fit(np.nan_to_num(X), y)

# ---------------------------------------------------------------------------------------------
# Predictions: X is checked only when a score is not finite

@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_predicting_on_bad_X_is_a_value_error(model, dtype, sparse):
    import scipy.sparse as sp
    X, y = data(model, dtype)
    result = fo.fit(X, y, model=model, epochs=2, tol=None, random_state=0)
    estimator = estimator_for(model, epochs=2, tol=None, random_state=0).fit(X, y)
    rng = np.random.default_rng(5)
    for zero_coefficients in (False, True):  # inf * 0 is NaN: still found
        if zero_coefficients:
            result.coef_[...] = 0.0
            estimator.coef_[...] = 0.0
        for bad in ("nan", "inf", "-inf"):
            B = X.copy()
            B[rng.integers(len(B)), rng.integers(B.shape[1])] = float(bad)
            B = sp.csr_matrix(B) if sparse else B
            calls = [result.predict, estimator.predict, estimator.score]
            if model != "linear":
                calls += [result.predict_proba, estimator.predict_proba,
                          estimator.decision_function]
            for call in calls:
                with pytest.raises(ValueError, match=MESSAGES[bad]):
                    call(B) if call != estimator.score else call(B, y)


def test_predicting_on_finite_X_does_not_scan_it(scans_of_X):
    X, y = data("logistic", np.float64)
    result = fo.fit(X, y, model="logistic", epochs=2, tol=None, random_state=0)
    estimator = fo.LogisticRegression(epochs=2, tol=None, random_state=0).fit(X, y)
    scans_of_X.clear()
    result.predict(X), result.predict_proba(X)
    estimator.predict(X), estimator.predict_proba(X), estimator.score(X, y)
    assert scans_of_X == []


@pytest.mark.parametrize("y, classes, expected", [
    (np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0]), [1.0, 0.0, 1.0]),  # two classes
    (np.array([3, 7, 7]), np.array([3.0, 7.0]), [0.0, 1.0, 1.0]),  # ints against floats
    (np.array(["b", "c", "a"]), np.array(["a", "b", "c"]), [1.0, 2.0, 0.0]),
    (np.array([2, 0, 1, 2]), np.array([0, 1, 2]), [2.0, 0.0, 1.0, 2.0])])
def test_class_indices_are_positions_in_the_sorted_classes(y, classes, expected):
    np.testing.assert_array_equal(v.class_indices(y, classes), expected)


@pytest.mark.parametrize("y, classes, named", [
    (np.array([0.0, 2.0, 1.0, 2.0]), np.array([0.0, 1.0]), r"\[2\.0\]"),
    (np.array([np.nan, 1.0]), np.array([0.0, 1.0]), r"\[nan\]"),
    (np.array(["a", "z", "q"]), np.array(["a", "b"]), r"\['q', 'z'\]"),
    (np.array([5, 1, -1]), np.array([0, 1, 2]), r"\[-1, 5\]")])
def test_class_indices_name_the_labels_not_in_classes(y, classes, named):
    with pytest.raises(ValueError, match="y contains labels not in classes: " + named):
        v.class_indices(y, classes)
