"""The compiled backend's Dataset: a fit's data checked once, at construction.

Bad input is refused there with a message that names the problem; the epochs and the objective
then take the Dataset with only O(1) checks of what changes between calls. The batch-1 lazy
SGD loop (rows whose columns strictly increase) gives the bits of the general lazy loop.
"""

import gc

import numpy as np
import pytest

import fastopt as fo

_core = pytest.importorskip("fastopt._core")
sp = pytest.importorskip("scipy.sparse")


def spec_of(model="logistic", d=4, k=1):
    spec = _core.ModelSpec()
    spec.model = getattr(_core.Model, model)
    spec.n_features = d
    spec.n_outputs = k
    return spec


def csr_parts(n=6, d=4, seed=0):
    S = sp.random(n, d, density=0.5, format="csr", random_state=seed)
    return S.data, S.indices.copy(), S.indptr.copy(), d


def adam():
    config = _core.OptimConfig()
    config.kind = _core.Optim.adam
    return config


def run(data, params, state, lrs, **options):
    options = {"batch_size": 2, "shuffle": True, "seed": 0, "epoch": 0, **options}
    return _core.run_epoch(data, params, adam(), state, 0, 1.0, options["batch_size"],
                           options["shuffle"], options["seed"], options["epoch"], lrs)


@pytest.mark.parametrize("change, message", [
    (lambda ind, ptr: ind.__setitem__(0, 4), r"X.indices out of range \[0, 4\)"),
    (lambda ind, ptr: ind.__setitem__(-1, -1), r"X.indices out of range"),
    (lambda ind, ptr: ptr.__setitem__(0, 1), "X.indptr must start at 0 and end at nnz"),
    (lambda ind, ptr: ptr.__setitem__(-1, ptr[-1] - 1), "must start at 0 and end at nnz"),
    (lambda ind, ptr: ptr.__setitem__(2, ptr[3] + 1), "X.indptr must be non-decreasing"),
])
def test_bad_sparse_structure_is_refused_at_construction(change, message):
    data, indices, indptr, d = csr_parts()
    change(indices, indptr)
    with pytest.raises(ValueError, match=message):
        _core.Dataset(spec_of(d=d), (data, indices, indptr, d), np.zeros(len(indptr) - 1))


@pytest.mark.parametrize("label", [3.0, -1.0, 0.5, np.nan])
def test_softmax_labels_outside_the_classes_are_refused_at_construction(label):
    X = np.zeros((5, 4))
    y = np.array([0.0, 1.0, 2.0, 1.0, label])
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 3\)"):
        _core.Dataset(spec_of("softmax", k=3), X, y)
    assert _core.Dataset(spec_of("softmax", k=3), X, np.r_[y[:4], 2.0]).n_samples == 5


def test_bad_arrays_are_refused_at_construction():
    spec, X, y = spec_of(), np.zeros((5, 4)), np.zeros(5)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 4\), got \(5, 3\)"):
        _core.Dataset(spec, np.zeros((5, 3)), y)
    with pytest.raises(TypeError, match="X must have dtype float32 or float64, got int64"):
        _core.Dataset(spec, np.zeros((5, 4), dtype=np.int64), y)
    with pytest.raises(ValueError, match="X must be C-contiguous"):
        _core.Dataset(spec, np.zeros((4, 5)).T, y)
    with pytest.raises(ValueError, match=r"y must have shape \(5,\), got \(4,\)"):
        _core.Dataset(spec, X, np.zeros(4))
    with pytest.raises(TypeError, match="y must have dtype float64, got float32"):
        _core.Dataset(spec, X, np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(5,\)"):
        _core.Dataset(spec, X, y, np.ones(6))
    with pytest.raises(ValueError, match="mean and inv_std go together"):
        _core.Dataset(spec, X, y, None, np.zeros(4), None)
    with pytest.raises(ValueError, match=r"inv_std must have shape \(4,\)"):
        _core.Dataset(spec, X, y, None, np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="X has no rows"):
        _core.Dataset(spec, np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match="X must have 4 columns, got 5"):
        data, indices, indptr, _ = csr_parts()
        _core.Dataset(spec, (data, indices, indptr, 5), np.zeros(6))
    with pytest.raises(TypeError, match="X.indices and X.indptr must both be int32 or both"):
        data, indices, indptr, d = csr_parts()
        _core.Dataset(spec, (data, indices, indptr.astype(np.int64), d), np.zeros(6))
    with pytest.raises(ValueError, match="linear and logistic models have one output"):
        _core.Dataset(spec_of(k=2), X, y)


def test_epochs_check_only_what_changes_between_calls():
    X = np.random.default_rng(0).standard_normal((6, 4))
    data = _core.Dataset(spec_of(), X, np.zeros(6))
    assert (data.n_samples, data.n_features, data.sparse) == (6, 4, False)
    params = np.zeros(5)
    state = {"exp_avg": np.zeros(5), "exp_avg_sq": np.zeros(5)}
    lrs = np.full(3, 0.1)
    with pytest.raises(TypeError, match="params has dtype float32 but X has dtype float64"):
        run(data, params.astype(np.float32), state, lrs)
    with pytest.raises(ValueError, match=r"params must have shape \(5,\), got \(4,\)"):
        run(data, np.zeros(4), state, lrs)
    with pytest.raises(ValueError, match=r"lrs must have shape \(3,\), got \(2,\)"):
        run(data, params, state, lrs[:2])
    with pytest.raises(ValueError, match="needs 2 state arrays, got 1"):
        run(data, params, {"exp_avg": np.zeros(5)}, lrs)
    with pytest.raises(ValueError, match="params and X share memory"):
        run(data, X.ravel()[:5], state, lrs)
    assert np.all(params == 0) and np.all(state["exp_avg"] == 0)  # nothing changed on error
    loss_sum, steps, status, _, step, _ = run(data, params, state, lrs)
    assert (steps, status, step) == (3, 0, 3) and np.isfinite(loss_sum)


def test_dataset_keeps_its_arrays_alive():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 4)), (rng.random(40) < 0.5).astype(float)
    S = sp.csr_matrix(np.where(rng.random((40, 4)) < 0.5, X, 0.0))
    for X_in in (X, (S.data, S.indices, S.indptr, 4)):
        kept = _core.Dataset(spec_of(), X_in, y)
        copied = [a.copy() for a in X_in[:3]] + [4] if isinstance(X_in, tuple) else X_in.copy()
        temporary = _core.Dataset(spec_of(), tuple(copied) if isinstance(X_in, tuple) else copied,
                                  y.copy())
        del copied
        gc.collect()
        for _ in range(3):  # reuse the memory the copies would have freed
            np.full(1000, np.nan)
        a, b = np.zeros(5), np.zeros(5)
        value_a, grad_a = _core.objective(kept, a + 0.1)
        value_b, grad_b = _core.objective(temporary, b + 0.1)
        assert value_a == value_b
        np.testing.assert_array_equal(grad_a, grad_b)


def test_tuning_variables_are_read_at_construction(monkeypatch):
    X, y = np.zeros((8, 4)), np.zeros(8)
    monkeypatch.setenv("FASTOPT_ROW_BLOCKS", "0")
    monkeypatch.setenv("FASTOPT_ROW_CHUNK", "5")
    monkeypatch.setenv("FASTOPT_PREFETCH_ROWS", "7")
    data = _core.Dataset(spec_of(), X, y)
    monkeypatch.setenv("FASTOPT_ROW_BLOCKS", "1")
    monkeypatch.setenv("FASTOPT_ROW_CHUNK", "9")
    assert data.tuning == {"prefetch_rows": 7, "prefetch_l2_rows": 1536, "row_blocks": False,
                           "row_chunk": 5}
    assert _core.Dataset(spec_of(), X, y).tuning["row_chunk"] == 9
    monkeypatch.delenv("FASTOPT_ROW_BLOCKS")
    monkeypatch.delenv("FASTOPT_ROW_CHUNK")
    monkeypatch.delenv("FASTOPT_PREFETCH_ROWS")
    assert _core.Dataset(spec_of(), X, y).tuning == {
        "prefetch_rows": 4, "prefetch_l2_rows": 1536, "row_blocks": True, "row_chunk": 8}


def test_unique_columns_is_found_in_the_index_check():
    data, indices, indptr, d = csr_parts(n=30, d=10, seed=3)
    y = np.zeros(30)
    assert _core.Dataset(spec_of(d=d), (data, indices, indptr, d), y).unique_columns
    row = next(r for r in range(30) if indptr[r + 1] - indptr[r] >= 2)
    swapped = indices.copy()
    swapped[indptr[row]:indptr[row] + 2] = swapped[indptr[row]:indptr[row] + 2][::-1]
    assert not _core.Dataset(spec_of(d=d), (data, swapped, indptr, d), y).unique_columns
    repeated = indices.copy()
    repeated[indptr[row] + 1] = repeated[indptr[row]]
    assert not _core.Dataset(spec_of(d=d), (data, repeated, indptr, d), y).unique_columns


def lazy_sgd_problem(model, dtype, seed=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((150, 40)).astype(dtype)
    X[rng.random(X.shape) > 0.15] = 0.0
    X[7] = 0.0  # a row without entries
    score = X.astype(np.float64) @ rng.standard_normal(40)
    y = score if model == "linear" else (score > 0).astype(int)
    return sp.csr_matrix(X), y, rng.uniform(0.5, 2.0, 150)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic"])
@pytest.mark.parametrize("options", [
    dict(lr=0.05, alpha=1e-3),
    dict(lr=0.05, alpha=1e-3, fit_intercept=False, weights=True),
    dict(lr=0.1, alpha=5.0),  # the scale halves at every update: folded back below 1e-9
    dict(lr=0.05, alpha=1e-3, shuffle=False),
])
def test_batch_one_lazy_sgd_gives_the_bits_of_the_general_lazy_loop(model, dtype, options):
    # The Numba backend runs the general lazy loop (epoch.hpp run_epoch_lazy) lane for lane;
    # the compiled backend takes its batch-1 loop here (canonical CSR, one output, SGD + L2).
    S, y, weights = lazy_sgd_problem(model, dtype)
    options = dict(options)
    sample_weight = weights if options.pop("weights", False) else None
    common = dict(model=model, optimizer="sgd", penalty="l2", epochs=2, batch_size=1, tol=None,
                  random_state=5, sparse_update="lazy", **options)
    cpp = fo.fit(S, y, backend="cpp", sample_weight=sample_weight, **common)
    numba = fo.fit(S, y, backend="numba", sample_weight=sample_weight, **common)
    np.testing.assert_array_equal(cpp.coef_, numba.coef_)
    np.testing.assert_array_equal(cpp.intercept_, numba.intercept_)
    assert cpp.history["loss"] == numba.history["loss"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_one_lazy_sgd_stops_where_the_general_loop_stops(dtype):
    # Diverging: the update that makes a value non-finite is refused, the same in both loops.
    S, y, _ = lazy_sgd_problem("linear", dtype)
    S = S * 1e3
    common = dict(model="linear", optimizer="sgd", penalty="l2", alpha=1e-3, lr=10.0,
                  epochs=3, batch_size=1, tol=None, random_state=0, sparse_update="lazy",
                  standardize=False)
    errors = []
    for backend in ("cpp", "numba"):
        with pytest.raises(fo.DivergenceError) as info:
            fo.fit(S, y, backend=backend, **common)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
