"""fastopt.dask: fits on dask collections equal to the single-machine fits, on the local
scheduler and on a 2-process LocalCluster, also when a worker dies mid-fit."""

import threading
import time

import numpy as np
import pytest

import fastopt as fo

da = pytest.importorskip("dask.array")
fdask = pytest.importorskip("fastopt.dask")


def problem(model, n=2400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d)
    score = X @ rng.standard_normal(d)
    y = {"linear": score + 0.2 * rng.standard_normal(n),
         "logistic": (score + rng.logistic(size=n) > 0).astype(int),
         "softmax": np.digitize(score, np.quantile(score, [0.3, 0.7]))}[model]
    return X, y, rng.uniform(0.5, 2.0, n)


def params_of(result):
    return np.r_[np.ravel(result.coef_), np.ravel(result.intercept_)]


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_gradient_strategy_is_the_full_batch_fit(model):
    X, y, w = problem(model)
    options = dict(model=model, optimizer="adam", lr=0.05, schedule="cosine", epochs=25,
                   standardize=True, penalty="l2", alpha=1e-3, sample_weight=w)
    distributed = fdask.fit(da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500),
                            **options)
    single = fo.fit(X, y, batch_size=None, tol=None, **options)
    np.testing.assert_allclose(params_of(distributed), params_of(single), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(distributed.history["loss"], single.history["loss"], rtol=1e-10)


def test_newton_sums_the_blocks_hessians():
    X, y, _ = problem("softmax", seed=1)
    options = dict(model="softmax", optimizer="newton", standardize=True, penalty="l2",
                   alpha=1e-2, epochs=20)
    distributed = fdask.fit(da.from_array(X, chunks=(700, -1)), y, **options)
    single = fo.fit(X, y, **options)
    np.testing.assert_allclose(params_of(distributed), params_of(single), rtol=1e-8,
                               atol=1e-10)


def test_average_strategy():
    X, y, _ = problem("logistic", seed=2)
    options = dict(model="logistic", lr=0.01, epochs=4, batch_size=64, random_state=5)
    one_block = fdask.fit(da.from_array(X, chunks=(len(X), -1)), y, strategy="average",
                          **options)
    single = fo.fit(X, y, tol=None, **options)
    np.testing.assert_array_equal(params_of(one_block), params_of(single))
    blocks = fdask.fit(da.from_array(X, chunks=(400, -1)), y, strategy="average",
                       sync_every=2, standardize=True, **dict(options, epochs=10))
    exact = fo.fit(X, y, model="logistic", optimizer="newton", standardize=True)
    assert (blocks.predict(X) == exact.predict(X)).mean() > 0.95
    assert blocks.history["epoch"] == [2, 4, 6, 8, 10]


def test_dataframes_and_estimators():
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y, _ = problem("softmax", seed=3)
    labels = np.array(["low", "mid", "high"])[y]
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcdef")), npartitions=3)
    target = dd.from_pandas(pd.Series(labels), npartitions=3)
    result = fdask.fit(frame, target, model="softmax", epochs=10, lr=0.1)
    assert list(result.feature_names_in_) == list("abcdef")
    assert set(result.classes_) == {"low", "mid", "high"}
    clf = fo.LogisticRegression(epochs=10, tol=None, random_state=0).fit(frame, target)
    assert list(clf.feature_names_in_) == list("abcdef")
    predicted = clf.predict(frame)
    assert hasattr(predicted, "compute")  # lazy
    assert (predicted.compute().to_numpy() == labels).mean() > 0.9
    reg_X, reg_y, _ = problem("linear", seed=4)
    blocks = da.from_array(reg_X, chunks=(600, -1))
    reg = fo.LinearRegression(optimizer="newton").fit(blocks, da.from_array(reg_y, chunks=600))
    single = fo.LinearRegression(optimizer="newton").fit(reg_X, reg_y)
    np.testing.assert_allclose(reg.coef_, single.coef_, rtol=1e-9)
    np.testing.assert_allclose(reg.predict(blocks).compute(), single.predict(reg_X), rtol=1e-9)


def test_bad_options():
    X, y, _ = problem("linear")
    with pytest.raises(ValueError, match="strategy"):
        fdask.fit(da.from_array(X), y, strategy="sometimes")
    with pytest.raises(ValueError, match="newton"):
        fdask.fit(da.from_array(X), y, optimizer="newton", strategy="average")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_two_worker_processes_and_a_worker_killed_mid_fit(cluster):
    cluster, client = cluster
    X = da.random.RandomState(0).standard_normal((20_000, 8), chunks=(2_500, 8))
    y = (X @ np.arange(8.0) > 0).astype(int)
    X, y = client.persist([X, y])
    options = dict(model="logistic", optimizer="adam", lr=0.1, epochs=30)
    on_cluster = fdask.fit(X, y, **options)
    X_here, y_here = client.compute([X, y], sync=True)
    import dask
    with dask.config.set(scheduler="threads"):  # the same blocks, summed on local threads
        local = fdask.fit(da.from_array(X_here, chunks=(2_500, 8)), y_here, **options)
    np.testing.assert_array_equal(params_of(on_cluster), params_of(local))

    outcome = {}
    fitting = threading.Thread(target=lambda: outcome.setdefault("result",
                                                                 fdask.fit(X, y, **options)))
    fitting.start()
    time.sleep(0.5)
    victim = next(iter(cluster.workers.values()))
    victim.process.process.kill()  # the nanny restarts it; its blocks are recomputed
    fitting.join(timeout=300)
    assert "result" in outcome
    np.testing.assert_array_equal(params_of(outcome["result"]), params_of(on_cluster))


def test_bad_values_are_refused_before_training():
    X, y, w = problem("linear")
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        fdask.fit(da.from_array(X, chunks=(500, -1)), y)
    w[3] = -1.0
    with pytest.raises(ValueError, match="sample_weight"):
        fdask.fit(da.from_array(np.nan_to_num(X), chunks=(500, -1)), y, sample_weight=w)


def test_unknown_chunk_sizes_get_a_clear_error():
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y, w = problem("linear", n=200)
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcdef")).assign(y=y), npartitions=3)
    features = frame[list("abcdef")]
    with pytest.raises(ValueError, match=r"X is a dask array with unknown chunk sizes.*"
                                         r"to_dask_array\(lengths=True\)"):
        fdask.fit(features.to_dask_array(), frame["y"])
    with pytest.raises(ValueError, match="X is a dask array with unknown chunk sizes"):
        fdask.fit(features.values, frame["y"])
    known = features.to_dask_array(lengths=True)
    with pytest.raises(ValueError, match="y is a dask array with unknown chunk sizes"):
        fdask.fit(known, frame["y"].values)
    with pytest.raises(ValueError, match="sample_weight is a dask array with unknown chunk"):
        fdask.fit(known, frame["y"], sample_weight=frame["y"].abs().values)
    result = fdask.fit(known, frame["y"], epochs=2)  # what the message suggests works
    assert np.isfinite(result.coef_).all()


def blocked(X, y, rows=2000):
    return da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)


def test_early_stopping_holds_out_blocks_and_keeps_the_best_parameters():
    X, y, _ = problem("logistic", n=20_000, d=10, seed=6)
    dX, dy = blocked(X, y)
    clf = fo.LogisticRegression(early_stopping=True, random_state=0).fit(dX, dy)
    assert clf.n_iter_ < 200  # of epochs=2000, all of which ran before
    assert np.isfinite(clf.history_["val_loss"]).all()
    seen = []
    result = fdask.fit(dX, dy, model="logistic", lr=0.1, epochs=400, early_stopping=True,
                       n_iter_no_change=3, random_state=1,
                       callback=lambda entry: seen.append(entry["params"].copy()))
    assert result.converged and len(result.history["loss"]) < 400
    best = int(np.argmin(result.history["val_loss"]))
    np.testing.assert_array_equal(result.state.params, seen[best])
    with pytest.raises(ValueError, match="single block.*rechunk"):
        fdask.fit(da.from_array(X, chunks=(len(X), -1)), y, model="logistic",
                  early_stopping=True)


def test_tol_stops_the_estimators_and_both_strategies():
    X, y, _ = problem("linear", n=8000, seed=7)
    dX, dy = blocked(X, y)
    reg = fo.LinearRegression(batch_size=None, lr=0.05, tol=1e-3).fit(dX, dy)
    assert reg.n_iter_ < 2000
    for strategy in ("gradient", "average"):
        result = fdask.fit(dX, dy, strategy=strategy, lr=0.05, epochs=1000, tol=1e-3,
                           standardize=True, random_state=0)
        assert result.converged
        assert len(result.history["loss"]) < 1000


def test_verbose_prints_a_line_per_step(capsys):
    X, y, _ = problem("logistic", n=4000, seed=8)
    dX, dy = blocked(X, y)
    fo.LogisticRegression(epochs=4, tol=None, verbose=1, random_state=0).fit(dX, dy)
    assert capsys.readouterr().err.count("-- Epoch") == 4
    fdask.fit(dX, dy, model="logistic", epochs=3, verbose=1)
    assert capsys.readouterr().err.count("-- Epoch") == 3


def test_init_continues_the_trajectory():
    X, y, w = problem("softmax", n=4000, seed=9)
    dX, dy = blocked(X, y, 1000)
    options = dict(model="softmax", lr=0.05, standardize=True, sample_weight=w,
                   random_state=3)
    whole = fdask.fit(dX, dy, epochs=10, **options)
    first = fdask.fit(dX, dy, epochs=4, **options)
    second = fdask.fit(dX, dy, epochs=6, init=first.state, **options)
    np.testing.assert_allclose(params_of(second), params_of(whole), rtol=1e-12, atol=1e-14)
    assert second.history["epoch"] == list(range(5, 11))
    assert second.state.updates == 10
    with pytest.raises(ValueError, match="init has 3 parameters"):
        fdask.fit(dX, dy, epochs=1, init=np.zeros(3), **options)


@pytest.mark.parametrize("batch_size", [None, 256])
def test_warm_start_continues(batch_size):
    X, y, _ = problem("logistic", n=8000, seed=10)
    dX, dy = blocked(X, y)
    clf = fo.LogisticRegression(optimizer="adam", warm_start=True, epochs=5, tol=None, lr=0.05,
                                batch_size=batch_size, standardize=False, random_state=0)
    losses = clf.fit(dX, dy).loss_curve_
    steps = clf.t_
    clf.fit(dX, dy)
    assert clf.n_iter_ == 10 and clf.t_ > steps
    assert clf.history_["epoch"][5] == 6
    later = clf.loss_curve_[5]
    assert abs(later - losses[-1]) < 0.2 * (losses[0] - losses[-1])
    # Another standardisation: the coefficients are mapped into the new space.
    before = clf.loss_curve_[-1]
    clf.set_params(standardize=True).fit(dX, dy)
    assert clf.n_iter_ == 15
    assert clf.loss_curve_[10] < losses[0] and abs(clf.loss_curve_[10] - before) < 0.05


def test_convergence_warning_when_tol_is_not_met():
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    X, y, _ = problem("logistic", n=4000, seed=11)
    dX, dy = blocked(X, y)
    clf = fo.LogisticRegression(optimizer="adam", epochs=3, tol=1e-9, random_state=0)
    with pytest.warns(sklearn_exceptions.ConvergenceWarning,
                      match=r"Maximum number of epochs \(3\)"):
        clf.fit(dX, dy)
    assert clf.n_iter_ == 3


def test_lbfgs_on_dask_is_the_in_memory_lbfgs():
    import dask.array as da
    from fastopt import dask as fdask
    rng = np.random.default_rng(7)
    X = rng.standard_normal((600, 5))
    y = (X @ rng.standard_normal(5) + 0.3 * rng.standard_normal(600) > 0).astype(int)
    options = dict(model="logistic", optimizer="lbfgs", penalty="l2", alpha=1e-3, epochs=100,
                   tol=1e-10)
    distributed = fdask.fit(da.from_array(X, chunks=(150, 5)), da.from_array(y, chunks=150),
                            **options)
    local = fo.fit(X, y, **options)
    np.testing.assert_allclose(distributed.coef_, local.coef_, rtol=1e-7, atol=1e-9)
    assert distributed.converged and distributed.n_iter_ > 3
    with pytest.raises(ValueError, match="strategy='gradient'"):
        fdask.fit(da.from_array(X, chunks=(150, 5)), da.from_array(y, chunks=150),
                  strategy="average", **options)


def test_the_default_estimator_on_dask_is_the_in_memory_optimum():
    # optimizer="auto" on dask collections: the distributed L-BFGS, stopped by the same
    # estimate as in memory, on the same objective.
    X, y, _ = problem("logistic", n=6000, seed=12)
    dX, dy = blocked(X, y)
    distributed = fo.LogisticRegression().fit(dX, dy)
    local = fo.LogisticRegression().fit(X, y)
    np.testing.assert_allclose(distributed.coef_, local.coef_, rtol=1e-5, atol=1e-7)
    assert distributed.history_["gap"][-1] <= 1e-7
    assert distributed.grad_max_ == distributed.history_["grad_max"][-1] < 1e-4
