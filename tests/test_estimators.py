"""The scikit-learn estimators: sklearn's own estimator checks, agreement with fastopt.fit,
partial_fit/warm_start continuation, and the guarantees of the fit (nothing lost on errors)."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastopt as fo  # noqa: E402
import fastopt.estimators as estimators  # noqa: E402
from fastopt.estimators import LinearRegression, LogisticRegression  # noqa: E402
from fastopt import _backends  # noqa: E402

column_scaling = _backends.resolve("auto").column_scaling


def regression_data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ np.arange(1.0, d + 1) - 2.0 + 0.1 * rng.standard_normal(n)
    return X, y


def classification_data(n=300, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ rng.standard_normal((d, classes)) + 0.5 * rng.standard_normal((n, classes))
    return X, np.argmax(scores, axis=1)


# -- scikit-learn's checks ----------------------------------------------------------------------

# Every default must converge on the checks' data (raw features around 100, separable classes,
# 1 to 300 rows): a ConvergenceWarning there is an error under the strict pytest configuration,
# so no warning filter here. Newton's method has no partial_fit, which the checks must see too.
# check_sample_weight_equivalence_on_dense_data (weights vs. 27 repeated rows) passes because
# both fits are full-batch (batch_size=32 >= 27) and the standardisation is weighted.
@parametrize_with_checks([
    LinearRegression(), LogisticRegression(),
    LinearRegression(optimizer="newton"), LogisticRegression(optimizer="newton"),
    # optimizer and schedule objects: clone, pickle and set_params with them
    LinearRegression(optimizer=fo.SGD(lr=0.05, momentum=0.9), batch_size=None),
    LogisticRegression(optimizer=fo.Adam(lr=0.01, betas=(0.9, 0.99)),
                       schedule=fo.Cosine(eta_min=1e-4)),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- the same results as fastopt.fit ------------------------------------------------------------

FIT_ARGUMENTS = [
    dict(optimizer="adam", lr=0.01, schedule="cosine", batch_size=32, penalty="l2", alpha=1e-3),
    dict(optimizer=fo.SGD(lr=0.05, momentum=0.9), batch_size=None, standardize=False,
         fit_intercept=False),
    dict(optimizer="rmsprop", lr=0.01, batch_size=50, penalty="elasticnet", early_stopping=True,
         validation_fraction=0.2, standardize=False, weighted=True),
    dict(optimizer="newton", penalty="l2", alpha=1e-2),
]


@pytest.mark.parametrize("arguments", FIT_ARGUMENTS, ids=lambda a: str(a["optimizer"]))
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_fit_gives_the_coefficients_of_fastopt_fit(model, arguments):
    arguments = dict(arguments)
    weighted = arguments.pop("weighted", False)
    arguments.setdefault("standardize", True)  # the defaults that differ from fastopt.fit's
    arguments.setdefault("penalty", None)
    if model == "linear":
        X, y = regression_data()
        estimator = LinearRegression
    else:
        X, y = classification_data(classes=2 if model == "logistic" else 3)
        estimator = LogisticRegression
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted else None
    common = dict(arguments, epochs=6, tol=None, random_state=11)
    expected = fo.fit(X, y, model=model, sample_weight=weights, **common)
    est = estimator(**common).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(est.coef_, expected.coef_)
    np.testing.assert_array_equal(est.intercept_, expected.intercept_)
    assert est.loss_curve_ == expected.history["loss"]
    assert est.history_ == {key: est.history_[key] for key in expected.history}
    assert est.history_["seconds"] and est.n_iter_ == expected.n_iter_
    if model != "linear":
        np.testing.assert_array_equal(est.classes_, expected.classes_)
        np.testing.assert_array_equal(est.predict_proba(X), expected.predict_proba(X))


def test_default_learning_rate_is_the_estimators_and_an_optimizer_object_keeps_its_own():
    X, y = regression_data()
    by_name = LinearRegression(optimizer="adam", epochs=3, tol=None, random_state=0).fit(X, y)
    explicit = LinearRegression(optimizer="adam", lr=estimators.DEFAULT_LR["adam"], epochs=3,
                                tol=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(by_name.coef_, explicit.coef_)
    assert by_name.history_["lr"][-1] == 0.01
    own = LinearRegression(optimizer=fo.Adam(lr=0.2), epochs=1, tol=None).fit(X, y)
    assert own.history_["lr"] == [0.2]


# -- partial_fit and warm_start -----------------------------------------------------------------

@pytest.mark.parametrize("estimator, classes", [(LinearRegression, None),
                                                (LogisticRegression, 2),
                                                (LogisticRegression, 3)])
def test_two_partial_fits_equal_a_two_epoch_fit(estimator, classes):
    if classes is None:
        X, y = regression_data()
        kwargs = {}
    else:
        X, y = classification_data(classes=classes)
        kwargs = {"classes": np.arange(classes)}
    params = dict(optimizer="adam", epochs=2, tol=None, schedule="cosine", batch_size=40,
                  random_state=3)
    stepped = estimator(**params)
    stepped.partial_fit(X, y, **kwargs)
    assert stepped.n_iter_ == 1 and stepped.t_ == 8
    stepped.partial_fit(X, y)
    whole = estimator(**params).fit(X, y)
    np.testing.assert_array_equal(stepped.coef_, whole.coef_)
    np.testing.assert_array_equal(stepped.intercept_, whole.intercept_)
    assert stepped.loss_curve_ == whole.loss_curve_
    assert stepped.t_ == whole.t_ == 16 and stepped.n_iter_ == whole.n_iter_ == 2


def test_partial_fit_continues_a_fit():
    X, y = regression_data()
    params = dict(optimizer="adam", tol=None, batch_size=64, random_state=5)  # constant lr
    continued = LinearRegression(epochs=3, **params).fit(X, y).partial_fit(X, y)
    whole = LinearRegression(epochs=4, **params).fit(X, y)
    np.testing.assert_array_equal(continued.coef_, whole.coef_)
    assert continued.loss_curve_ == whole.loss_curve_
    assert continued.history_["epoch"] == [1, 2, 3, 4]


def test_partial_fit_standardises_with_the_batches_seen_so_far():
    # issue 22 item 6: the statistics followed the first batch only, so a column constant in
    # it stayed unscaled for good.
    X, y = regression_data()
    est = LinearRegression(random_state=0).partial_fit(X[:100], y[:100])
    est.partial_fit(X[100:] * 10, y[100:])
    seen = np.vstack([X[:100], X[100:] * 10])
    for kept, expected in zip(est._scaling, column_scaling(seen)):
        np.testing.assert_allclose(kept, expected, rtol=1e-10)
    np.testing.assert_allclose(est._target, (y.mean(), y.std()), rtol=1e-10)


def test_partial_fit_on_a_first_batch_with_a_constant_column():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 3)) * [1.0, 50.0, 1.0]
    y = (X[:, 1] / 50 + X[:, 0] + 0.3 * rng.standard_normal(len(X)) > 0).astype(int)
    X[:500, 1] = 7.0  # constant in the first batch
    est = LogisticRegression(random_state=0)
    for start in range(0, len(X), 500):
        for _ in range(5):
            est.partial_fit(X[start:start + 500], y[start:start + 500], classes=[0, 1])
    whole = LogisticRegression(random_state=0).fit(X, y)
    assert est.score(X, y) > whole.score(X, y) - 0.02
    np.testing.assert_allclose(est._scaling[1][1], column_scaling(X)[1][1], rtol=1e-10)


def test_partial_fit_classes():
    X, y = classification_data(classes=3)
    est = LogisticRegression()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    assert not hasattr(est, "coef_") and not hasattr(est, "n_features_in_")
    with pytest.raises(ValueError, match="labels not in classes"):
        est.partial_fit(X, y, classes=[0, 1])
    est.partial_fit(X[y != 2], y[y != 2], classes=[2, 0, 1])  # a batch may miss a class
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.coef_.shape == (3, 4)
    est.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="is not the same as on the first call"):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_partial_fit_is_unavailable_with_newton():
    est = LogisticRegression(optimizer="newton")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError) as info:
        est.partial_fit(*classification_data(), classes=[0, 1, 2])
    assert "optimizer='newton'" in str(info.value.__cause__)
    assert hasattr(LogisticRegression(), "partial_fit")


def test_warm_start_continues_the_previous_fit():
    X, y = classification_data()
    params = dict(optimizer="adam", tol=None, batch_size=64, random_state=2)
    est = LogisticRegression(epochs=3, warm_start=True, **params).fit(X, y)
    est.set_params(epochs=2).fit(X, y)
    whole = LogisticRegression(epochs=5, **params).fit(X, y)
    np.testing.assert_array_equal(est.coef_, whole.coef_)
    assert est.loss_curve_ == whole.loss_curve_ and est.n_iter_ == 5 and est.t_ == whole.t_
    cold = LogisticRegression(epochs=2, **params).fit(X, y)
    assert est.set_params(warm_start=False, epochs=2).fit(X, y).loss_curve_ == cold.loss_curve_


def test_warm_start_maps_the_coefficients_to_new_data():
    X, y = regression_data()
    est = LinearRegression(optimizer="newton", tol=None, epochs=20).fit(X, y)
    coef = est.coef_.copy()
    est.set_params(warm_start=True, optimizer="adam", epochs=1, lr=0.0, tol=None)  # no move
    moved = X * 3.0 + 1.0
    est.fit(moved, y)  # another standardisation: the same coefficients of the raw features
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-9)
    # The intercept of a standardised linear model is not trained: on the centred target it is
    # the mean residual of the coefficients.
    np.testing.assert_allclose(est.intercept_, y.mean() - moved.mean(axis=0) @ coef, rtol=1e-9)
    kept = est.intercept_
    est.set_params(standardize=False).fit(X * 2.0, y)  # a trained intercept carries over
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-9)
    np.testing.assert_allclose(est.intercept_, kept, rtol=1e-9)
    with pytest.raises(ValueError, match="warm_start=True: X has 3 features"):
        est.fit(X[:, :3], y)


# -- predictions --------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 4])
def test_probabilities_and_decision_function(n_classes):
    X, y = classification_data(classes=n_classes)
    est = LogisticRegression(random_state=0).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (proba > 0).all()
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba))
    scores = est.decision_function(X)
    if n_classes == 2:
        assert scores.shape == (len(X),) and est.coef_.shape == (1, 4)
        assert est.intercept_.shape == (1,)
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)))
    else:
        assert scores.shape == (len(X), n_classes) and est.coef_.shape == (n_classes, 4)
        assert est.intercept_.shape == (n_classes,)
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(proba, axis=1)])
    best = LogisticRegression(optimizer="newton").fit(X, y).score(X, y)
    assert est.score(X, y) > best - 0.02


@pytest.mark.parametrize("labels", [["cat", "dog"], ["cat", "dog", "emu"]])
def test_string_labels(labels):
    X, y = classification_data(classes=len(labels))
    names = np.array(labels, dtype=object)[y]
    est = LogisticRegression(random_state=0).fit(X, names)
    np.testing.assert_array_equal(est.classes_, sorted(labels))
    predicted = est.predict(X)
    assert predicted.dtype == object and set(predicted) <= set(labels)
    numeric = LogisticRegression(random_state=0).fit(X, y)
    np.testing.assert_array_equal(predicted, np.array(labels)[numeric.predict(X)])
    np.testing.assert_array_equal(est.coef_, numeric.coef_)


def test_linear_regression_attributes_and_score():
    X, y = regression_data()
    est = LinearRegression(random_state=0).fit(X, y)
    assert est.coef_.shape == (4,) and isinstance(est.intercept_, float)
    np.testing.assert_allclose(est.coef_, [1, 2, 3, 4], atol=0.05)
    assert est.score(X, y) > 0.99
    assert est.predict(X).shape == (300,)


def test_wrong_feature_count_at_predict():
    X, y = regression_data()
    est = LinearRegression(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but LinearRegression is expecting "
                                         "4 features as input"):
        est.predict(X[:, :3])
    clf = LogisticRegression(random_state=0).fit(*classification_data())
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match="is expecting 4 features"):
            method(X[:, :3])


# -- data handling ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_c_contiguous_float_input_is_not_copied(dtype, monkeypatch):
    seen = []
    original = estimators.prepare

    def spy(X, *args, **kwargs):
        seen.append(X)
        return original(X, *args, **kwargs)

    monkeypatch.setattr(estimators, "prepare", spy)
    X, y = regression_data()
    X = np.ascontiguousarray(X, dtype=dtype)
    LinearRegression(epochs=1, tol=None).fit(X, y)
    assert np.shares_memory(seen[0], X) and seen[0].dtype == dtype
    LinearRegression(epochs=1, tol=None).fit(np.asfortranarray(X), y)
    assert not np.shares_memory(seen[1], X)  # F order: one C-ordered copy is needed


@pytest.mark.parametrize("estimator", [LinearRegression, LogisticRegression])
def test_integer_sample_weights_equal_repeated_rows(estimator):
    X, y = regression_data(n=60) if estimator is LinearRegression else classification_data(60)
    X = X * [1.0, 10.0, 100.0, 0.1] + 50.0  # the weighted standardisation matters
    weights = np.random.default_rng(4).integers(0, 4, len(y))
    params = dict(batch_size=None, epochs=30, tol=None, penalty="l2", alpha=0.1,
                  random_state=0)
    weighted = estimator(**params).fit(X, y, sample_weight=weights)
    repeated = estimator(**params).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-9)
    unweighted = estimator(**params).fit(X, y)
    assert not np.allclose(unweighted.coef_, weighted.coef_, rtol=1e-3)


def test_weighted_column_scaling_counts_weights_as_repeats():
    X, _ = regression_data(n=50)
    weights = np.random.default_rng(3).integers(0, 4, 50).astype(float)
    mean, inv_std = column_scaling(X, weights * 50 / weights.sum())
    expected = column_scaling(np.repeat(X, weights.astype(int), axis=0))
    np.testing.assert_allclose(mean, expected[0], rtol=1e-12)
    np.testing.assert_allclose(inv_std, expected[1], rtol=1e-12)
    unweighted = column_scaling(X, None)
    np.testing.assert_array_equal(unweighted[0], column_scaling(X)[0])


def test_one_weighted_class_is_refused():
    X, y = classification_data(classes=2)
    with pytest.raises(ValueError, match="at least 2 classes with non-zero sample_weight"):
        LogisticRegression().fit(X, y, sample_weight=(y == 1).astype(float))


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_dataframe_keeps_feature_names(library):
    lib = pytest.importorskip(library)
    X, y = regression_data()
    names = ["a", "b", "c", "d"]
    if library == "pandas":
        frame, target = lib.DataFrame(X, columns=names), lib.Series(y)
    else:
        frame, target = lib.DataFrame(X, schema=names), lib.Series(y)
    est = LinearRegression(random_state=0).fit(frame, target)
    np.testing.assert_array_equal(est.feature_names_in_, names)
    assert est.n_features_in_ == 4
    plain = LinearRegression(random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.coef_, plain.coef_)
    # A DataFrame converts to a Fortran-ordered array: BLAS may sum in another order.
    np.testing.assert_allclose(est.predict(frame), plain.predict(X), rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame[["d", "c", "b", "a"]])
    labels = np.where(y > np.median(y), "high", "low")
    clf = LogisticRegression(random_state=0).fit(frame, lib.Series(labels))
    np.testing.assert_array_equal(clf.feature_names_in_, names)
    assert set(clf.predict(frame)) <= {"high", "low"} and clf.score(frame, labels) > 0.9


def test_defaults_converge_on_raw_features():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((400, 3)) * [100.0, 1.0, 0.01] + [1000.0, 0.0, -5.0]
    y = (X - [1000.0, 0.0, -5.0]) @ [0.02, 2.0, 100.0] + 3.0 + 0.1 * rng.standard_normal(400)
    est = LinearRegression(random_state=0).fit(X, y)  # a ConvergenceWarning would fail here
    assert est.n_iter_ < est.epochs
    np.testing.assert_allclose(est.coef_, [0.02, 2.0, 100.0], rtol=0.02)
    labels = (y > np.median(y)).astype(int)
    clf = LogisticRegression(random_state=0).fit(X, labels)
    assert clf.n_iter_ < clf.epochs and clf.score(X, labels) > 0.95


def test_convergence_warning_when_epochs_run_out():
    X, y = regression_data()
    with pytest.warns(ConvergenceWarning, match=r"Maximum number of epochs \(2\)"):
        est = LinearRegression(optimizer="adam", epochs=2, random_state=0).fit(X, y)
    assert est.n_iter_ == 2  # fitted all the same


@pytest.mark.parametrize("params, message", [
    (dict(epochs=0), "epochs"), (dict(optimizer="bogus"), "optimizer"),
    (dict(penalty="l3"), "penalty"), (dict(backend="gpu"), "backend"), (dict(lr=-1.0), "lr"),
    (dict(shuffle="yes"), "shuffle"), (dict(validation_fraction=1.5), "validation_fraction"),
    (dict(verbose=-1), "verbose"), (dict(random_state=-3), "random_state"),
    (dict(alpha=-1.0), "alpha"), (dict(batch_size=0), "batch_size"),
])
def test_parameters_are_validated_in_fit(params, message):
    est = LinearRegression(**params)  # stored as given
    assert all(est.get_params()[key] == value for key, value in params.items())
    with pytest.raises(ValueError, match=message):
        est.fit(*regression_data())


# -- nothing lost on errors ---------------------------------------------------------------------

def test_divergence_keeps_the_previous_coefficients():
    X, y = regression_data()
    est = LinearRegression(random_state=0).fit(X, y)
    before = dict(vars(est))
    coef = est.coef_.copy()
    est.set_params(optimizer="sgd", lr=1e6, standardize=False)
    with pytest.raises(fo.DivergenceError, match="non-finite"):
        est.fit(X * 1e150, y)
    np.testing.assert_array_equal(est.coef_, coef)
    fitted = [key for key in before if key.endswith("_")]
    assert all(vars(est)[key] is before[key] for key in fitted)
    assert sorted(vars(est)) == sorted(before)


def test_keyboard_interrupt_leaves_the_estimator_as_before():
    X, y = classification_data()
    params = dict(optimizer="adam", tol=None, epochs=3, batch_size=64, random_state=1,
                  warm_start=True)
    est = LogisticRegression(**params).fit(X, y)
    state = est._state.params.copy(), {k: np.copy(a) for k, a in
                                       est._state.optimizer_state.items()}
    before = dict(vars(est))

    def interrupt_from(update):  # a schedule that raises when the epoch reaches `update`
        def schedule(t):
            if t[-1] >= update:
                raise KeyboardInterrupt
            return np.full(len(t), 0.01)
        return schedule

    est.set_params(schedule=interrupt_from(est.t_ + 5))  # in the second epoch
    with pytest.raises(KeyboardInterrupt):
        est.fit(X[:, ::-1], y)  # another standardisation as well
    assert {k: v for k, v in vars(est).items() if k != "schedule"} == {
        k: v for k, v in before.items() if k != "schedule"}
    np.testing.assert_array_equal(est._state.params, state[0])
    for key, value in state[1].items():
        np.testing.assert_array_equal(est._state.optimizer_state[key], value)
    # and training continues exactly as if the interrupted call had not happened
    est.set_params(schedule=None, epochs=2).fit(X, y)
    whole = LogisticRegression(**dict(params, epochs=5, warm_start=False)).fit(X, y)
    np.testing.assert_array_equal(est.coef_, whole.coef_)
    # a fresh fit on other data, interrupted: the feature count is not reset either
    coef = est.coef_.copy()
    est.set_params(warm_start=False, schedule=interrupt_from(5))
    with pytest.raises(KeyboardInterrupt):
        est.fit(X[:, :3], y)
    assert est.n_features_in_ == 4
    np.testing.assert_array_equal(est.coef_, coef)
    np.testing.assert_array_equal(est.predict(X), whole.predict(X))


# -- cloning and pickling -----------------------------------------------------------------------

def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    est = LogisticRegression(optimizer=fo.Adam(lr=0.02), schedule="cosine", epochs=7, tol=None,
                             random_state=3).fit(*classification_data())
    copy = clone(est)
    assert not hasattr(copy, "coef_")
    assert copy.get_params() == est.get_params() and copy.optimizer is not est.optimizer
    np.testing.assert_array_equal(copy.fit(*classification_data()).coef_, est.coef_)


def test_pickle_round_trip():
    X, y = classification_data()
    names = np.array(["a", "b", "c"])[y]
    est = LogisticRegression(random_state=0, batch_size=64).fit(X, names)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    # the training state travels too: partial_fit continues identically
    np.testing.assert_array_equal(restored.partial_fit(X, names).coef_,
                                  est.partial_fit(X, names).coef_)
