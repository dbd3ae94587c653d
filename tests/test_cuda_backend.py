"""The CUDA backend (numba.cuda) against the NumPy reference: optimizer steps, the objective,
whole fits, the shuffle, determinism, device-resident input, divergence.

Runs on a real GPU, or in numba's CUDA simulator, which runs every thread in Python (so sizes
here are tiny)::

    NUMBA_ENABLE_CUDASIM=1 pytest tests/test_cuda_backend.py

(numba reads NUMBA_ENABLE_CUDASIM when it is imported: set it in the environment.)
"""

import pickle

import numpy as np
import pytest

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():  # True in the simulator
    pytest.skip("no CUDA device; NUMBA_ENABLE_CUDASIM=1 runs these tests in numba's simulator",
                allow_module_level=True)

from numba.core import config  # noqa: E402

import fastopt as fo  # noqa: E402
from fastopt._backends import cuda as _cuda_backend
from fastopt import _backends  # noqa: E402
from fastopt.reference.shuffle import batch_permutation, permutation  # noqa: E402
from fastopt.engine import TrainingState, prepare  # noqa: E402
import backend_calls  # noqa: E402

DTYPES = [np.float64, np.float32]
SIMULATED = bool(config.ENABLE_CUDASIM)
# A GPU contracts a * b + c into fused multiply-adds, which round differently from the
# reference: a tolerance. (The simulator does not, and then the optimizer steps agree exactly.)
STEP_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}
FIT_TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-6)}


def make_data(model, n=30, d=3, k=3, seed=0, dtype=np.float64):
    """n is not a multiple of the batch sizes used below: the last batch is a partial one."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d)
    scores = X @ rng.standard_normal((k, d)).T / np.sqrt(d)
    if model == "linear":
        y = scores[:, 0] + 0.1 * rng.standard_normal(n)
    elif model == "logistic":
        y = (scores[:, 0] + rng.standard_normal(n) > 0).astype(int)
    else:
        y = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    return X.astype(dtype), y


def fit_both(X, y, **kwargs):
    return fo.fit(X, y, backend="cuda", **kwargs), fo.fit(X, y, backend="numpy", **kwargs)


def assert_fits_close(a, b, tol):
    np.testing.assert_allclose(a.coef_, b.coef_, **tol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, **tol)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=tol["rtol"])
    assert a.history["steps"] == b.history["steps"]


# ---------------------------------------------------------------------------------------------
# Choosing the backend

def test_cuda_is_named_explicitly_never_by_auto(monkeypatch):
    assert "cuda" in _backends.BACKENDS
    assert _backends.cuda_status() == "available"
    assert _backends.resolve("cuda").name == "cuda"
    monkeypatch.delenv("FASTOPT_BACKEND", raising=False)
    assert _backends.resolve("auto").name != "cuda"
    monkeypatch.setattr(_backends, "_cuda_status", "no CUDA device found")
    with pytest.raises(ImportError, match="^cuda: no CUDA device found$"):
        _backends.resolve("cuda")


# ---------------------------------------------------------------------------------------------
# Optimizer steps

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_optimizer_step_matches_reference(optimizer, dtype, rng, gradients):
    params = rng.standard_normal(7).astype(dtype)
    a, b = params.copy(), params.copy()
    state_a, state_b = optimizer.init(a), optimizer.init(b)
    for grad in gradients(7, dtype, steps=18):  # includes a zero and a 1e6 gradient
        optimizer.step(a, grad, state_a, backend="cuda")
        optimizer.step(b, grad, state_b, backend="numpy")
    assert a.dtype == dtype
    close = np.testing.assert_array_equal if SIMULATED else (
        lambda x, y: np.testing.assert_allclose(x, y, **STEP_TOL[dtype]))
    close(a, b)
    assert state_a["step"] == state_b["step"] == 18
    for name in optimizer._state_names():
        assert state_a[name].dtype == dtype
        close(state_a[name], state_b[name])
    if "mu_product" in state_a:
        assert state_a["mu_product"] == state_b["mu_product"]


@pytest.mark.parametrize("opt", [fo.SGD(lr=0.1, momentum=0.9), fo.Adam(amsgrad=True)], ids=repr)
def test_optimizer_step_updates_device_arrays_in_place(opt, rng):
    params = rng.standard_normal((2, 3))  # any shape
    reference, reference_state = params.copy(), opt.init(params)
    state = {key: cuda.to_device(value) if isinstance(value, np.ndarray) else value
             for key, value in opt.init(params).items()}
    device_params = cuda.to_device(params)
    for _ in range(3):
        grad = rng.standard_normal((2, 3))
        opt.step(device_params, cuda.to_device(grad), state, backend="cuda")
        opt.step(reference, grad, reference_state, backend="numpy")
    np.testing.assert_allclose(device_params.copy_to_host(), reference, **STEP_TOL[np.float64])
    for name in opt._state_names():
        np.testing.assert_allclose(state[name].copy_to_host(), reference_state[name],
                                   **STEP_TOL[np.float64])
    assert state["step"] == 3


def test_optimizer_step_refuses_what_it_cannot_update():
    opt = fo.SGD(momentum=0.9)
    params = np.zeros(4)
    with pytest.raises(TypeError, match="grad has dtype float32 but params has dtype float64"):
        opt.step(params, np.ones(4, np.float32), opt.init(params), backend="cuda")
    with pytest.raises(ValueError, match="has shape \\(3,\\) but params has shape \\(4,\\)"):
        opt.step(params, np.ones(3), opt.init(params), backend="cuda")
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step(np.zeros(8)[::2], np.ones(4), opt.init(params), backend="cuda")
    frozen = np.zeros(4)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.step(frozen, np.ones(4), opt.init(params), backend="cuda")
    with pytest.raises(TypeError, match="float32 or float64"):
        opt.step(np.zeros(4, np.int64), np.ones(4, np.int64), {"step": 0,
                 "momentum_buffer": np.zeros(4, np.int64)}, backend="cuda")


# ---------------------------------------------------------------------------------------------
# The shuffle

@cuda.jit
def _rows_kernel(perm, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = _cuda_backend._row_at(np.uint64(i), perm)


@pytest.mark.parametrize("n, seed, epoch", [(2, 0, 0), (5, 7, 3), (37, 2**64 - 1, 1),
                                            (64, 12345, 0), (300, 99, 5)])
def test_permutation_is_the_reference_one(n, seed, epoch):
    rows = cuda.device_array(n, dtype=np.int64)
    perm = cuda.to_device(_cuda_backend._permutation(n, seed, epoch, True))
    _cuda_backend._launch(_rows_kernel, -(-n // 64), 64, perm, rows)
    np.testing.assert_array_equal(rows.copy_to_host(), permutation(n, seed, epoch))
    in_order = cuda.to_device(_cuda_backend._permutation(n, seed, epoch, False))
    _cuda_backend._launch(_rows_kernel, -(-n // 64), 64, in_order, rows)
    np.testing.assert_array_equal(rows.copy_to_host(), np.arange(n))
    blocks = cuda.to_device(_cuda_backend._permutation(n, seed, epoch, "batches", 7))
    _cuda_backend._launch(_rows_kernel, -(-n // 64), 64, blocks, rows)
    np.testing.assert_array_equal(rows.copy_to_host(), batch_permutation(n, 7, seed, epoch))


# ---------------------------------------------------------------------------------------------
# The objective and whole fits

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_objective_matches_reference(model, dtype):
    X, y = make_data(model, dtype=dtype)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    problem, _ = prepare(X, y, model=model, penalty="elasticnet", alpha=0.1, l1_ratio=0.3,
                         fit_intercept=True, sample_weight=weights, standardize=True)
    params = np.random.default_rng(2).standard_normal(problem.spec.n_params).astype(dtype)
    value, grad = backend_calls.objective("cuda", problem, params)
    expected_value, expected_grad = backend_calls.objective("numpy", problem, params)
    assert grad.dtype == np.float64
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("penalty", [None, "l1", "elasticnet"])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("opt", [fo.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                 fo.Adam(lr=0.02, amsgrad=True), fo.RAdam(lr=0.05)], ids=repr)
def test_fit_matches_reference(opt, model, penalty):
    X, y = make_data(model)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    cuda_fit, reference = fit_both(
        X, y, model=model, optimizer=opt, penalty=penalty, alpha=0.01, l1_ratio=0.4, epochs=2,
        batch_size=8, tol=None, random_state=7, sample_weight=weights, standardize=True,
        schedule="cosine")
    assert_fits_close(cuda_fit, reference, FIT_TOL[np.float64])
    assert cuda_fit.history["steps"] == [4, 8]


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("opt", [fo.SGD(lr=0.05, momentum=0.5), fo.NAdam(lr=0.02)], ids=repr)
def test_float32_fit_follows_reference(opt, model):
    X, y = make_data(model, dtype=np.float32)
    cuda_fit, reference = fit_both(X, y, model=model, optimizer=opt, epochs=2, batch_size=8,
                                   tol=None, random_state=3, penalty="l2", alpha=1e-3)
    assert cuda_fit.state.params.dtype == np.float32
    assert_fits_close(cuda_fit, reference, FIT_TOL[np.float32])


def test_full_batch_early_stopping_and_no_intercept_follow_reference():
    X, y = make_data("logistic")
    kwargs = dict(model="logistic", optimizer=fo.Adagrad(lr=0.1), epochs=3, tol=None,
                  random_state=1)
    assert_fits_close(*fit_both(X, y, batch_size=None, **kwargs), FIT_TOL[np.float64])
    a, b = fit_both(X, y, batch_size=8, early_stopping=True, validation_fraction=0.2,
                    fit_intercept=False, **kwargs)
    assert_fits_close(a, b, FIT_TOL[np.float64])
    np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=1e-10)


def test_same_random_state_is_bit_identical():
    X, y = make_data("softmax", dtype=np.float32)
    kwargs = dict(model="softmax", optimizer=fo.Adam(lr=0.05), epochs=2, batch_size=8,
                  tol=None, standardize=True, backend="cuda")
    first = fo.fit(X, y, random_state=5, **kwargs)
    again = fo.fit(X, y, random_state=5, **kwargs)
    other = fo.fit(X, y, random_state=6, **kwargs)
    assert np.array_equal(first.coef_, again.coef_)
    assert np.array_equal(first.intercept_, again.intercept_)
    assert first.history["loss"] == again.history["loss"]
    assert not np.array_equal(first.coef_, other.coef_)


# ---------------------------------------------------------------------------------------------
# What lives on the device

def count_uploads(monkeypatch):
    shapes = []
    upload = _cuda_backend._upload

    def counting(array):
        shapes.append(np.shape(array) if np.asarray(array).dtype != np.uint32
                      else ("order", np.shape(array)))
        return upload(array)

    monkeypatch.setattr(_cuda_backend, "_upload", counting)
    return shapes


def test_data_goes_to_the_device_once_and_parameters_stay_there(monkeypatch):
    X, y = make_data("linear", n=31, d=9)  # no other upload has 9 or 10 elements
    shapes = count_uploads(monkeypatch)
    fo.fit(X, y, optimizer="adam", epochs=3, batch_size=8, tol=None, random_state=0,
           standardize=True, backend="cuda")
    assert shapes.count(X.shape) == 1
    assert shapes.count((31,)) == 1                         # y
    assert shapes.count(("order", (31,))) == 3              # each epoch's shuffled rows
    # mean, inv_std; params, exp_avg, exp_avg_sq (9 too: a standardised linear model trains
    # no intercept, its optimum on the centred target being 0)
    assert shapes.count((9,)) == 5
    assert shapes.count((4, _cuda_backend._N_COEFS)) == 3   # each epoch's coefficients


def test_host_changes_between_epochs_are_seen():
    X, y = make_data("linear")
    problem, _ = prepare(X, y, model="linear", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False)
    opt = fo.Adam(lr=0.05)
    states = []
    for backend in ("cuda", "numpy"):
        params = np.zeros(problem.spec.n_params)
        state = TrainingState(params, opt, opt.init(params), seed=3)
        run = backend_calls.Epochs(backend)
        lrs = np.full(4, 0.05)
        for change in (None, "params", "state"):
            if change == "params":
                state.params[0] = 1.5       # in place: a warm start, a rollback
            elif change == "state":
                state.optimizer_state["exp_avg"] = np.full(problem.spec.n_params, 0.1)
            assert run(problem, state, lrs, 8, True)[2]
            state.epochs += 1
        states.append(state)
    np.testing.assert_allclose(states[0].params, states[1].params, **FIT_TOL[np.float64])
    assert states[0].optimizer_state["step"] == states[1].optimizer_state["step"] == 12


def test_device_copies_are_not_pickled():
    X, y = make_data("linear")
    result = fo.fit(X, y, epochs=1, batch_size=8, tol=None, random_state=0, backend="cuda")
    # The device copies live in the fit's dataset, never on the state a user keeps.
    assert not any(type(value).__module__.startswith("numba") for value in
                   vars(result.state).values())
    restored = pickle.loads(pickle.dumps(result.state))
    np.testing.assert_array_equal(restored.params, result.state.params)


def test_device_X_is_used_without_a_copy(monkeypatch):
    X, y = make_data("softmax", dtype=np.float32)
    X_device = cuda.to_device(X)
    problem, _ = prepare(X_device, y, model="softmax", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False,
                         backend="cuda")
    assert problem.X is X_device
    kwargs = dict(model="softmax", optimizer=fo.Adam(lr=0.05), epochs=2, batch_size=8,
                  tol=None, random_state=4, backend="cuda")
    shapes = count_uploads(monkeypatch)
    on_device = fo.fit(X_device, y, **kwargs)
    assert X.shape not in shapes
    on_host = fo.fit(X, y, **kwargs)
    assert isinstance(on_device.coef_, np.ndarray)
    assert np.array_equal(on_device.coef_, on_host.coef_)
    assert on_device.history["loss"] == on_host.history["loss"]


def test_device_X_with_standardize_weights_and_early_stopping():
    X, y = make_data("linear")
    weights = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    kwargs = dict(optimizer=fo.SGD(lr=0.05), epochs=2, batch_size=8, tol=None, random_state=2,
                  sample_weight=weights, standardize=True, early_stopping=True,
                  validation_fraction=0.2)
    on_device = fo.fit(cuda.to_device(X), y, backend="cuda", **kwargs)
    reference = fo.fit(X, y, backend="numpy", **kwargs)
    assert_fits_close(on_device, reference, FIT_TOL[np.float64])
    np.testing.assert_allclose(on_device.history["val_loss"], reference.history["val_loss"],
                               rtol=1e-10)


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "Input X contains NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "Input X contains infinity"),
    (np.ones((2, 2), dtype=np.int64), "float32 or float64"),
    (np.ones((2, 4))[:, ::2], "C-contiguous"),
    (np.ones(3), "Expected 2D array"),
])
def test_device_X_is_checked_on_the_device(bad, message):
    device = cuda.to_device(bad) if bad.flags.c_contiguous else cuda.to_device(
        np.ones((2, 4)))[:, ::2]
    with pytest.raises(ValueError, match=message):
        fo.fit(device, np.arange(2.0), backend="cuda")


def test_device_X_is_refused_elsewhere():
    X, y = make_data("linear")
    for backend in ("numpy", "auto"):
        with pytest.raises(ValueError, match="GPU memory.*backend='cuda'"):
            fo.fit(cuda.to_device(X), y, backend=backend)
    with pytest.raises(ValueError, match="Hessian on the host"):
        fo.fit(cuda.to_device(X), y, optimizer="newton", backend="cuda")


# ---------------------------------------------------------------------------------------------
# Divergence

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in NumPy (and the simulator)
def test_divergence_is_reported_at_the_reference_step_and_rolled_back():
    X, y = make_data("linear")
    kwargs = dict(optimizer=fo.SGD(lr=1e100), epochs=3, batch_size=8, tol=None, random_state=0)
    messages = []
    for backend in ("cuda", "numpy"):
        with pytest.raises(fo.DivergenceError) as error:
            fo.fit(X, y, backend=backend, **kwargs)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "epoch 1, update" in messages[0]

    problem, _ = prepare(X, y, model="linear", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False)
    params = np.zeros(problem.spec.n_params)
    state = TrainingState(params, kwargs["optimizer"], kwargs["optimizer"].init(params))
    run = backend_calls.Epochs("cuda")
    loss, steps, ok, failed = run(problem, state, np.full(4, 1e100), 8, True)
    assert not ok and steps == failed and failed > 0
    assert np.array_equal(state.params, np.zeros_like(params))  # left for the caller
    assert run(problem, state, np.full(4, 1e-3), 8, True)[2]  # starts again from the host copy
