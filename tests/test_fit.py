"""fastopt.fit: the compiled epoch loop against the NumPy reference, optima against
scikit-learn, the loop's promises (schedules, history, early stopping, divergence, memory)."""

import tracemalloc
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt.reference import models as ref
import backend_calls  # noqa: E402

OPTIMIZERS = [fo.SGD(lr=0.05), fo.SGD(lr=0.02, momentum=0.9, nesterov=True), fo.Adagrad(lr=0.1),
              fo.RMSprop(lr=0.01, centered=True), fo.Adadelta(), fo.Adam(lr=0.02, amsgrad=True),
              fo.AdamW(lr=0.02), fo.NAdam(lr=0.02), fo.RAdam(lr=0.02)]
PENALTIES = [None, "l2", "l1", "elasticnet"]


def make_data(model, n=150, d=6, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d))
    w = rng.standard_normal((k, d))
    scores = X @ w.T / np.sqrt(d)
    if model == "linear":
        y = scores[:, 0] + 0.1 * rng.standard_normal(n)
    elif model == "logistic":
        y = (scores[:, 0] + rng.standard_normal(n) > 0).astype(int)
    else:
        y = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    return X.astype(dtype), y


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=repr)
def test_cpp_fit_equals_reference_fit(opt, model, penalty):
    X, y = make_data(model)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    kwargs = dict(model=model, optimizer=opt, penalty=penalty, alpha=0.01, l1_ratio=0.4,
                  epochs=3, batch_size=32, tol=None, random_state=7, sample_weight=weights,
                  standardize=True, schedule="cosine")
    cpp = fo.fit(X, y, backend="cpp", **kwargs)
    reference = fo.fit(X, y, backend="numpy", **kwargs)
    np.testing.assert_allclose(cpp.coef_, reference.coef_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(cpp.intercept_, reference.intercept_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(cpp.history["loss"], reference.history["loss"], rtol=1e-10)
    assert cpp.history["steps"] == reference.history["steps"] == [5, 10, 15]


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("opt", [fo.SGD(lr=0.05, momentum=0.5), fo.Adam(lr=0.02),
                                 fo.NAdam(lr=0.02)], ids=repr)
def test_float32_fit_follows_reference(opt, model):
    X, y = make_data(model, dtype=np.float32)
    kwargs = dict(model=model, optimizer=opt, epochs=3, batch_size=16, tol=None,
                  random_state=3, penalty="l2", alpha=1e-3)
    cpp = fo.fit(X, y, backend="cpp", **kwargs)
    reference = fo.fit(X, y, backend="numpy", **kwargs)
    assert cpp.state.params.dtype == np.float32
    np.testing.assert_allclose(cpp.coef_, reference.coef_, rtol=1e-4, atol=1e-6)


def test_full_batch_is_gradient_descent():
    X, y = make_data("linear", n=60, d=3)
    result = fo.fit(X, y, optimizer="sgd", lr=0.1, batch_size=None, epochs=4, tol=None,
                    fit_intercept=False)
    w = np.zeros(3)
    for _ in range(4):
        w -= 0.1 * X.T @ (X @ w - y) / len(y)
    np.testing.assert_allclose(result.coef_, w, rtol=1e-12)
    assert result.history["steps"] == [1, 2, 3, 4]


def test_last_partial_batch_is_included():
    X, y = make_data("linear", n=10, d=2)
    result = fo.fit(X, y, optimizer="sgd", batch_size=4, epochs=2, tol=None, random_state=0)
    assert result.history["steps"] == [3, 6]


# --- reaching the optimum ---------------------------------------------------------------------

def _objective(model, X, y, result):
    problem, _ = fo.engine.prepare(X, y, model=model, penalty=None, alpha=0.0, l1_ratio=0.0,
                                     fit_intercept=True, sample_weight=None, standardize=False)
    params = fo.engine.from_original_space(problem, result.coef_, result.intercept_,
                                             np.float64)
    return ref.objective(problem.spec, problem.X, problem.y, None, None, None, params)[0]


def _sklearn_optimum(model, X, y):
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    from sklearn.metrics import log_loss

    if model == "linear":
        est = sklearn_linear.LinearRegression().fit(X, y)
        return 0.5 * np.mean((est.predict(X) - y) ** 2)
    est = sklearn_linear.LogisticRegression(C=np.inf, tol=1e-12, max_iter=100000).fit(X, y)
    return log_loss(y, est.predict_proba(X))


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_newton_reaches_the_sklearn_optimum(model):
    X, y = make_data(model, n=400, d=8, k=4, seed=5)
    optimum = _sklearn_optimum(model, X, y)
    result = fo.fit(X, y, model=model, optimizer="newton", epochs=50)
    assert result.converged
    assert abs(_objective(model, X, y, result) - optimum) <= 1e-8 * optimum


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_adam_with_decaying_schedule_reaches_the_optimum(model):
    X, y = make_data(model, n=400, d=8, k=4, seed=5)
    optimum = _sklearn_optimum(model, X, y)
    result = fo.fit(X, y, model=model, optimizer="adam", lr=0.02, schedule="cosine",
                    epochs=300, batch_size=32, standardize=True, tol=None, random_state=0)
    gap = (_objective(model, X, y, result) - optimum) / optimum
    assert -1e-9 <= gap <= 1e-4


def test_logistic_loss_is_stable_for_huge_scores():
    X = np.array([[1e4], [-1e4], [5e3]])
    y = np.array([0, 1, 1])
    problem, _ = fo.engine.prepare(X, y, model="logistic", penalty=None, alpha=0, l1_ratio=0,
                                     fit_intercept=False, sample_weight=None, standardize=False)
    for backend in ("cpp", "numpy"):
        value, grad = backend_calls.objective(backend, problem, np.array([1.0]))
        assert value == pytest.approx((1e4 + 1e4 + 0.0) / 3)
        assert np.all(np.isfinite(grad))


# --- the loop: schedules, history, stopping ---------------------------------------------------

def test_schedule_counter_runs_over_the_whole_fit():
    X, y = make_data("linear", n=100, d=3)
    seen = []
    result = fo.fit(X, y, optimizer="sgd", lr=0.01, batch_size=10, epochs=3, tol=None,
                    schedule=lambda t: (seen.append(np.array(t)), 0.01 / (1 + t))[1])
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(30))
    assert result.history["lr"] == pytest.approx([0.01 / 10, 0.01 / 20, 0.01 / 30])


def test_history_has_one_entry_per_epoch():
    X, y = make_data("logistic")
    result = fo.fit(X, y, model="logistic", epochs=4, tol=None, random_state=0)
    assert set(result.history) == {"epoch", "loss", "lr", "seconds", "steps"}
    assert all(len(v) == 4 for v in result.history.values())
    assert result.history["epoch"] == [1, 2, 3, 4] and result.n_iter_ == 4
    assert all(s >= 0 for s in result.history["seconds"])


def test_tol_stops_early_and_converges():
    X, y = make_data("linear")
    result = fo.fit(X, y, lr=0.05, epochs=500, tol=1e-3, n_iter_no_change=3, random_state=0)
    assert result.converged and result.n_iter_ < 500


def test_convergence_warning_when_epochs_run_out():
    X, y = make_data("linear")
    with pytest.warns(fo.ConvergenceWarning, match="Maximum number of epochs"):
        fo.fit(X, y, lr=1e-4, epochs=2, tol=1e-12, random_state=0)


def test_convergence_warning_is_scikit_learns_looked_up_on_first_use():
    import subprocess
    import sys
    code = ("import sys, fastopt; assert 'sklearn' not in sys.modules, 'imported at start'; "
            "from sklearn.exceptions import ConvergenceWarning; "
            "assert fastopt.ConvergenceWarning is ConvergenceWarning")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_early_stopping_monitors_a_validation_loss():
    X, y = make_data("logistic", n=300)
    result = fo.fit(X, y, model="logistic", lr=0.01, epochs=200, early_stopping=True,
                    validation_fraction=0.2, n_iter_no_change=3, random_state=0)
    assert "val_loss" in result.history and result.converged
    assert len(result.history["val_loss"]) == result.n_iter_ < 200


def test_callback_sees_each_epoch_and_can_stop():
    X, y = make_data("linear")
    entries = []

    def callback(entry):
        entries.append(entry)
        return entry["epoch"] < 3

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fo.fit(X, y, epochs=10, callback=callback, random_state=0)
    assert [e["epoch"] for e in entries] == [1, 2, 3] and result.n_iter_ == 3


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = make_data("linear")
    fo.fit(X, y, epochs=2, tol=None, verbose=1, random_state=0)
    assert capsys.readouterr().err.count("-- Epoch") == 2


def test_same_random_state_same_result_and_different_seeds_differ():
    X, y = make_data("logistic")
    kwargs = dict(model="logistic", epochs=2, tol=None, batch_size=16, optimizer="sgd")
    a = fo.fit(X, y, random_state=1, **kwargs)
    b = fo.fit(X, y, random_state=1, **kwargs)
    c = fo.fit(X, y, random_state=2, **kwargs)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_random_state_none_draws_fresh_shuffles():
    """random_state=None: a fresh 64-bit seed each fit, so two fits shuffle differently."""
    from fastopt._validation import seed_from
    seeds = {seed_from(None) for _ in range(4)}
    assert len(seeds) == 4 and all(0 <= seed < 2**64 for seed in seeds)
    X, y = make_data("logistic")
    kwargs = dict(model="logistic", epochs=2, tol=None, batch_size=16, optimizer="sgd")
    assert not np.array_equal(fo.fit(X, y, **kwargs).coef_, fo.fit(X, y, **kwargs).coef_)


def test_standardize_matches_fitting_standardized_data():
    X, y = make_data("linear")
    scaled = (X - X.mean(0)) / X.std(0)
    # A linear model's target is standardised too, and its intercept (0 at the optimum on
    # centred data) is not trained.
    center, scale = y.mean(), y.std()
    kwargs = dict(epochs=3, tol=None, random_state=0, lr=0.05)
    on_the_fly = fo.fit(X, y, standardize=True, **kwargs)
    by_hand = fo.fit(scaled, (y - center) / scale, fit_intercept=False, **kwargs)
    np.testing.assert_allclose(on_the_fly.predict(X), by_hand.predict(scaled) * scale + center,
                               rtol=1e-9)


def test_predict_and_proba():
    X, y = make_data("softmax", k=3)
    labels = np.array(["a", "b", "c"])[y]
    result = fo.fit(X, labels, model="softmax", epochs=30, lr=0.05, tol=None, random_state=0)
    proba = result.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(result.predict(X)) <= {"a", "b", "c"}
    assert (result.predict(X) == labels).mean() > 0.6
    with pytest.raises(ValueError, match="X has 2 features, but the model was fitted with 6"):
        result.predict(X[:, :2])


# --- divergence, inputs, memory --------------------------------------------------------------

def test_divergence_names_epoch_update_and_learning_rate():
    X, y = make_data("linear")
    with pytest.raises(fo.DivergenceError, match=r"epoch \d, update \d of 5 \(learning rate "
                                                 r"1e\+10\).*standardize=True"):
        fo.fit(X * 1e10, y, optimizer="sgd", lr=1e10, epochs=3, batch_size=32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_every_backend_stops_at_the_same_update(dtype, sparse):
    # The compiled loops check the loss and every coordinate of the gradient after each
    # update (on the bits, vectorised); the reference checks the same values.
    import re
    import scipy.sparse as sp
    X, y = make_data("linear")
    X = (X * 1e10).astype(dtype)
    if sparse:
        X = sp.csr_matrix(X)
    places = []
    for backend in ("cpp", "numba", "numpy"):
        with pytest.raises(fo.DivergenceError) as info:
            fo.fit(X, y, optimizer="sgd", lr=1e10, epochs=3, batch_size=32, random_state=0,
                   backend=backend)
        places.append(re.search(r"epoch \d+, update \d+", str(info.value)).group())
    assert len(set(places)) == 1, places


@pytest.mark.parametrize("sparse", [False, True])
def test_an_overflowing_gradient_stops_at_its_update(sparse):
    # Every row's loss is log(2) at the start, but the minibatch's gradient sum overflows:
    # only the check of the gradient catches it, before the update makes the parameters NaN.
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    X = np.c_[np.full(200, 1e308), rng.standard_normal(200)]
    y = (np.arange(200) % 40 == 0).astype(int)
    if sparse:
        X = sp.csr_matrix(X)
    for backend in ("cpp", "numba", "numpy"):
        with pytest.raises(fo.DivergenceError, match="epoch 1, update 1 of"):
            fo.fit(X, y, model="logistic", optimizer="sgd", lr=0.1, epochs=2, batch_size=32,
                   random_state=0, backend=backend)


@pytest.mark.parametrize("bad, message", [
    (np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")])
def test_refuses_non_finite_X(bad, message):
    X, y = make_data("linear")
    X[3, 1] = bad
    with pytest.raises(ValueError, match=message):
        fo.fit(X, y)


def test_refuses_non_finite_y():
    X, y = make_data("linear")
    y[0] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        fo.fit(X, y)


@pytest.mark.parametrize("X, y, message", [
    (np.zeros(5), np.zeros(5), "Expected 2D array, got 1D array"),
    (np.zeros((5, 2)), np.zeros(4), "inconsistent numbers of samples: \\[5, 4\\]"),
    (np.zeros((0, 2)), np.zeros(0), "Found array with 0 sample"),
    (np.array([["a", "b"], ["c", "d"]]), np.zeros(2), "must be numeric"),
    (np.zeros((2, 2), dtype=complex), np.zeros(2), "Complex data not supported"),
])
def test_refuses_malformed_input(X, y, message):
    with pytest.raises(ValueError, match=message):
        fo.fit(X, y)


def test_refuses_a_single_class():
    X, _ = make_data("logistic")
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 1"):
        fo.fit(X, np.ones(len(X)), model="logistic")


@pytest.mark.parametrize("weights, message", [
    ("zeros", "at least one non-zero"), ("negative", "Negative values")])
def test_refuses_bad_sample_weights(weights, message):
    X, y = make_data("linear")
    w = np.zeros(len(y)) if weights == "zeros" else -np.ones(len(y))
    with pytest.raises(ValueError, match=message):
        fo.fit(X, y, sample_weight=w)


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="poisson"), "'model' parameter must be one of 'linear', 'logistic', 'softmax'"),
    (dict(penalty="l3"), "'penalty' parameter must be one of None, 'l2', 'l1', 'elasticnet'"),
    (dict(optimizer="adamax"), "'sgd', 'adagrad'"),
    (dict(schedule="warmup"), "valid names"),
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(epochs=0), "'epochs' parameter must be an int >= 1"),
    (dict(batch_size=0), "'batch_size' parameter must be an int >= 1"),
    (dict(alpha=-1.0), "'alpha' parameter"),
    (dict(l1_ratio=2.0), "'l1_ratio' parameter"),
    (dict(validation_fraction=1.5), "'validation_fraction'"),
    (dict(backend="fortran"), "backend must be"),
    (dict(optimizer="newton", penalty="l1"), "smooth objective"),
])
def test_refuses_unknown_options_and_bad_hyperparameters(kwargs, message):
    X, y = make_data("linear")
    with pytest.raises(ValueError, match=message):
        fo.fit(X, y, **kwargs)


def test_inputs_are_not_modified_and_read_only_memmap_works(tmp_path):
    X, y = make_data("logistic")
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    y_before = y.copy()
    result = fo.fit(mapped, y, model="logistic", epochs=2, tol=None, random_state=0)
    direct = fo.fit(X, y, model="logistic", epochs=2, tol=None, random_state=0)
    np.testing.assert_array_equal(result.coef_, direct.coef_)
    np.testing.assert_array_equal(np.load(path), X)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("layout", ["fortran", "strided", "list", "dataframe"])
def test_other_layouts_give_the_same_result(layout):
    X, y = make_data("linear")
    expected = fo.fit(X, y, epochs=2, tol=None, random_state=0).coef_
    if layout == "fortran":
        other = np.asfortranarray(X)
    elif layout == "strided":
        other = np.repeat(X, 2, axis=1)[:, ::2]
    elif layout == "list":
        other = X.tolist()
    else:
        pd = pytest.importorskip("pandas")
        other = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    np.testing.assert_array_equal(fo.fit(other, y, epochs=2, tol=None, random_state=0).coef_,
                                  expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_c_contiguous_X_is_not_copied(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100_000, 100)).astype(dtype)
    y = rng.standard_normal(100_000)
    fo.fit(X[:100], y[:100], epochs=1, tol=None)  # warm-up: imports, first allocations
    tracemalloc.start()
    fo.fit(X, y, epochs=1, tol=None, standardize=True, random_state=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.1 * X.nbytes


def test_finite_float32_values_whose_sum_overflows_are_accepted():
    X = np.full((40, 2), 3e38, dtype=np.float32)
    X[::2] *= -1
    X[1::4] = 1.0
    y = np.arange(40.0)
    fo.fit(X, y, standardize=True, epochs=1, tol=None, random_state=0)


def test_callback_gets_the_current_parameters():
    X, y = make_data("linear")
    seen = []
    result = fo.fit(X, y, epochs=3, tol=None, random_state=0,
                    callback=lambda entry: seen.append(entry["params"].copy()))
    assert len(seen) == 3 and not np.array_equal(seen[0], seen[2])
    np.testing.assert_array_equal(seen[-1], result.state.params)
    assert "params" not in result.history


def test_learning_rates_computed_in_chunks_of_epochs_are_the_same(monkeypatch):
    from fastopt import engine as training

    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 3))
    y = X @ [1.0, 2.0, -1.0]
    runs = []
    for chunk in (1 << 16, 25, 10):  # all epochs at once, 2.5 epochs (-> 2), under 1 (-> 1)
        monkeypatch.setattr(training, "LR_CHUNK", chunk)
        result = fo.fit(X, y, optimizer="sgd", lr=0.05, schedule="cosine", epochs=7,
                        batch_size=10, tol=None, random_state=0)
        runs.append(result)
    for other in runs[1:]:
        assert other.history["lr"] == runs[0].history["lr"]
        np.testing.assert_array_equal(other.coef_, runs[0].coef_)
    assert len(set(runs[0].history["lr"])) == 7  # the schedule does change every epoch
