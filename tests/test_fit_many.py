"""fastopt.fit_many: every configuration's result equals its separate fastopt.fit to the last
bit (coefficients, intercepts, history), whichever way the backend trains them together."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastopt as fo
from fastopt import _backends
from fastopt.many import FitManyResult
from conftest import OPTIMIZER_CASES

PENALTIES = [(None, 0.0, 0.15), ("l2", 1e-2, 0.15), ("l1", 1e-3, 0.15),
             ("elasticnet", 1e-2, 0.5)]
SCHEDULES = [None, "cosine", "invsqrt", "step", "warmup_cosine"]
HISTORY_KEYS = ("epoch", "loss", "lr", "steps")  # "seconds" is a clock


def problem(model, n=203, d=9, dtype=np.float64, sparse=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if sparse:
        X[rng.random((n, d)) < 0.6] = 0.0
    scores = X @ rng.standard_normal(d)
    if model == "linear":
        y = scores + 0.3 * rng.standard_normal(n) + 2.0
    elif model == "logistic":
        y = np.where(scores + rng.logistic(size=n) > 0, "yes", "no")
    else:
        y = np.digitize(scores + rng.logistic(size=n), [-1.0, 1.0])
    X = X.astype(dtype)
    return (sp.csr_matrix(X) if sparse else X), y


def spread_configs(optimizers):
    """One configuration per optimizer, the schedules and penalties differing among them."""
    configs = []
    for i, opt in enumerate(optimizers):
        penalty, alpha, l1_ratio = PENALTIES[i % len(PENALTIES)]
        configs.append({"optimizer": opt, "schedule": SCHEDULES[i % len(SCHEDULES)],
                        "penalty": penalty, "alpha": alpha, "l1_ratio": l1_ratio})
    return configs


def separate(X, y, config, **shared):
    """``fastopt.fit`` of one configuration: (result, DivergenceError or None)."""
    try:
        return fo.fit(X, y, **{**shared, **config}), None
    except fo.DivergenceError as exc:
        return exc.result, exc


def assert_same(many, single, error=None):
    """``many`` (a FitManyResult) is ``single`` (a FitResult) to the last bit."""
    assert isinstance(many, FitManyResult)
    if error is not None:
        assert isinstance(many.error, fo.DivergenceError)
        assert str(many.error) == str(error)
        if single is None:  # non-finite: fit kept nothing to compare the parameters with
            return
    else:
        assert many.error is None
    assert np.array_equal(many.coef_, single.coef_)
    assert np.array_equal(np.asarray(many.intercept_), np.asarray(single.intercept_))
    assert many.n_iter_ == single.n_iter_
    assert many.converged == single.converged
    for key in HISTORY_KEYS:
        assert many.history[key] == single.history[key], key
    assert many.coef_.dtype == single.coef_.dtype


def check_all(X, y, configs, **shared):
    results = fo.fit_many(X, y, configs, **shared)
    assert len(results) == len(configs)
    for config, many in zip(configs, results):
        single, error = separate(X, y, config, **shared)
        assert_same(many, single, error)
    return results


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_every_optimizer_equals_its_separate_fit(model, dtype, sparse):
    X, y = problem(model, dtype=dtype, sparse=sparse)
    configs = spread_configs(OPTIMIZER_CASES)
    for i, config in enumerate(configs):  # learning rates differing too, some from `lr`
        if i % 3 == 0:
            config["lr"] = 0.01 * (1 + i % 4)
    results = check_all(X, y, configs, model=model, epochs=3, batch_size=16, tol=None,
                        random_state=7, backend="cpp")
    assert all(r.error is None for r in results)
    # Distinct configurations give distinct models: the configurations were not mixed up.
    assert len({r.coef_.tobytes() for r in results}) == len(results)


@pytest.mark.parametrize("options", [
    {"shuffle": False},
    {"shuffle": "batches"},
    {"batch_size": None},
    {"batch_size": 7},  # tails of 1-3 rows after the blocks of four
    {"batch_size": 1},
    {"fit_intercept": False},
    {"standardize": True},
    {"sample_weight": "random"},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_shared_options(model, sparse, options):
    X, y = problem(model, n=150, d=5, sparse=sparse)
    options = dict(options)
    if options.get("sample_weight") == "random":
        options["sample_weight"] = np.random.default_rng(3).uniform(0.1, 3.0, len(y))
    configs = spread_configs([fo.Adam(lr=0.05), fo.SGD(lr=0.05, momentum=0.9),
                              fo.RMSprop(lr=0.01), fo.NAdam(lr=0.02), fo.Adagrad(lr=0.1)])
    shared = dict(model=model, epochs=2, batch_size=16, tol=None, random_state=1,
                  backend="cpp")
    check_all(X, y, configs, **{**shared, **options})


@pytest.mark.parametrize("knobs", [("0", "0"), ("0", "16"), ("0", "5"), ("1", "16")],
                         ids=lambda k: f"blocks={k[0]},chunk={k[1]}")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_row_loops_agree(monkeypatch, model, dtype, knobs):
    # Dense one-output X trains every configuration four rows at a time; a separate fit takes
    # its rows by whichever loop the knobs choose (X read from memory: one row at a time,
    # updates deferred by FASTOPT_ROW_CHUNK rows). The bits must not depend on it.
    monkeypatch.setenv("FASTOPT_ROW_BLOCKS", knobs[0])
    monkeypatch.setenv("FASTOPT_ROW_CHUNK", knobs[1])
    X, y = problem(model, n=301, d=37, dtype=dtype)
    configs = spread_configs([fo.Adam(lr=0.02), fo.SGD(lr=0.1), fo.AdamW(lr=0.01),
                              fo.RAdam(lr=0.03)])
    check_all(X, y, configs, model=model, epochs=2, batch_size=30, tol=None, random_state=4,
              backend="cpp")


def test_one_configuration():
    X, y = problem("logistic")
    check_all(X, y, [{}], model="logistic", optimizer="adam", lr=0.05, epochs=3, tol=None,
              random_state=0)


def late_blow_up(steps_per_epoch):
    """A schedule that trains for an epoch, then takes steps that overflow."""
    return lambda t: np.where(np.asarray(t) < steps_per_epoch, 1e-2, 1e308)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("model, sparse", [("linear", False), ("logistic", False),
                                           ("softmax", False), ("logistic", True)])
def test_a_diverging_configuration_drops_out(model, sparse, backend):
    if backend == "numba":
        pytest.importorskip("numba")
    X, y = problem(model, n=160, sparse=sparse)
    steps = 160 // 16
    configs = [{"lr": 0.01}, {"optimizer": "sgd", "schedule": late_blow_up(steps)},
               {"lr": 0.03, "penalty": "l2", "alpha": 0.1}]
    shared = dict(model=model, optimizer="adam", epochs=4, batch_size=16, tol=None,
                  random_state=2, backend=backend)
    results = fo.fit_many(X, y, configs, **shared)
    for i in (0, 2):  # the others finish, with their own bits
        single, error = separate(X, y, configs[i], **shared)
        assert error is None
        assert_same(results[i], single)
        assert results[i].n_iter_ == 4
    failed = results[1]
    with pytest.raises(fo.DivergenceError) as info:
        fo.fit(X, y, **{**shared, **configs[1]})
    assert info.value.result is None  # non-finite: fit keeps nothing
    assert str(failed.error) == str(info.value)
    assert "epoch 2" in str(failed.error)
    # What it keeps: the model and history of its last good epoch, as a fit of one epoch.
    one_epoch, _ = separate(X, y, configs[1], **{**shared, "epochs": 1})
    assert failed.n_iter_ == 1
    assert_same(FitManyResult(**{**vars(failed), "error": None}), one_epoch)


def test_a_finite_divergence_is_recorded_with_its_result():
    # The divergence rule of the Monitor (the loss stayed finite but grew): fit raises it with
    # its result; fit_many keeps both.
    X, y = problem("logistic", n=200)
    X = X * 50.0
    configs = [{"optimizer": "sgd", "lr": 100.0}, {"lr": 0.01}]
    shared = dict(model="logistic", optimizer="adam", epochs=4, batch_size=20, tol=None,
                  random_state=0)
    with pytest.raises(fo.DivergenceError) as info:
        fo.fit(X, y, **{**shared, **configs[0]})
    assert info.value.result is not None
    results = fo.fit_many(X, y, configs, **shared)
    assert_same(results[0], info.value.result, info.value)
    assert results[0].error.result is results[0]
    assert results[1].error is None


def test_bad_input_is_a_value_error_not_a_divergence():
    X, y = problem("linear")
    X[37, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fo.fit_many(X, y, [{"lr": 0.1}, {"lr": 0.01}], epochs=2)


def test_configurations_stop_on_their_own_tol():
    X, y = problem("linear", n=400)
    configs = [{"lr": lr} for lr in (1e-3, 0.03, 0.3)]
    shared = dict(optimizer="sgd", epochs=40, batch_size=32, tol=1e-3, n_iter_no_change=2,
                  random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fo.ConvergenceWarning)
        results = check_all(X, y, configs, **shared)
    assert len({r.n_iter_ for r in results}) == 3  # they left the group at different epochs
    assert any(r.converged for r in results)


def test_convergence_warning_names_the_configuration():
    X, y = problem("linear")
    with pytest.warns(fo.ConvergenceWarning) as caught:
        fo.fit_many(X, y, [{"lr": 0.1}, {"lr": 1e-6}], optimizer="sgd", epochs=2,
                    tol=1e-12, n_iter_no_change=1, random_state=0)
    assert sorted(str(w.message)[:10] for w in caught) == ["configs[0]", "configs[1]"]


@pytest.mark.parametrize("options", [
    {"early_stopping": True, "validation_fraction": 0.2, "tol": 1e-4, "n_iter_no_change": 2},
    {"n_jobs": 2},
], ids=["early_stopping", "n_jobs"])
def test_options_trained_one_configuration_at_a_time(options):
    X, y = problem("logistic", n=300)
    configs = spread_configs([fo.Adam(lr=0.05), fo.SGD(lr=0.2), fo.Adadelta()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fo.ConvergenceWarning)
        check_all(X, y, configs, model="logistic", epochs=6, batch_size=32, random_state=3,
                  **{"tol": None, **options})


def test_lazy_sparse_updates():
    X, y = problem("logistic", n=200, d=30, sparse=True)
    configs = [{"optimizer": "adam", "lr": 0.05}, {"optimizer": "sgd", "lr": 0.5,
                                                   "penalty": "l2", "alpha": 1e-3}]
    check_all(X, y, configs, model="logistic", epochs=2, batch_size=8, tol=None,
              random_state=0, sparse_update="lazy")


@pytest.mark.parametrize("small_calls", [False, True], ids=["", "small_calls"])
@pytest.mark.parametrize("model, sparse, standardize", [
    ("logistic", False, False), ("linear", False, True), ("softmax", True, False),
    ("logistic", True, True)])
def test_numba_backend(monkeypatch, model, sparse, standardize, small_calls):
    pytest.importorskip("numba")
    if small_calls:  # the kernel stops inside minibatches: configurations take turns there
        monkeypatch.setattr(_backends._numba(), "_WORK_PER_CALL", 200)
    X, y = problem(model, sparse=sparse)
    check_all(X, y, spread_configs([fo.Adam(lr=0.05), fo.SGD(lr=0.1, momentum=0.5),
                                    fo.RAdam(lr=0.02)]),
              model=model, epochs=2, batch_size=16, tol=None, random_state=1,
              backend="numba", standardize=standardize)


def test_other_backends_and_solvers_fit_separately():
    X, y = problem("logistic", n=120, d=4)
    configs = [{"optimizer": "adam", "lr": 0.05}, {"optimizer": "lbfgs", "penalty": "l2",
                                                   "alpha": 1e-2}, {"optimizer": "sgd"}]
    for backend in ("numpy", "cpp"):
        results = check_all(X, y, configs, model="logistic", epochs=3, batch_size=16,
                            tol=None, random_state=0, backend=backend)
        assert results[1].history.get("grad_max")  # the solver's own history


def test_a_failed_separate_fit_keeps_its_history():
    X, y = problem("linear", n=64)
    configs = [{"optimizer": "sgd", "schedule": late_blow_up(4)}, {"lr": 0.01}]
    results = fo.fit_many(X, y, configs, optimizer="adam", epochs=3, batch_size=16, tol=None,
                          random_state=0, backend="numpy")
    assert isinstance(results[0].error, fo.DivergenceError)
    assert results[0].coef_ is None and results[0].n_iter_ == 1
    assert len(results[0].history["loss"]) == 1
    assert results[1].error is None and results[1].coef_ is not None


def test_random_state_none_shares_one_seed():
    X, y = problem("linear")
    a, b = fo.fit_many(X, y, [{"lr": 0.01}, {"lr": 0.01}], epochs=2, tol=None, batch_size=8)
    assert np.array_equal(a.coef_, b.coef_)


def test_defaults_come_from_the_keywords():
    X, y = problem("linear")
    shared = dict(epochs=2, tol=None, random_state=0, batch_size=32)
    result, = fo.fit_many(X, y, [{}], optimizer="rmsprop", lr=0.01, penalty="l1", alpha=0.1,
                          schedule="cosine", **shared)
    single = fo.fit(X, y, optimizer="rmsprop", lr=0.01, penalty="l1", alpha=0.1,
                    schedule="cosine", **shared)
    assert_same(result, single)


@pytest.mark.parametrize("configs, message", [
    ([{"lr": 0.1}, {"learning_rate": 0.1}], r"configs\[1\] has unknown options"),
    ([{}, {}, {"optimizer": "adamm"}], r"configs\[2\]: optimizer must be"),
    ([{"lr": -1.0}], r"configs\[0\]: Invalid learning rate"),
    ([{}, {"penalty": "l3"}], r"configs\[1\]: .*penalty"),
    ([{}, {"alpha": -1.0}], r"configs\[1\]: .*alpha"),
    ([{"l1_ratio": 2.0}], r"configs\[0\]: .*l1_ratio"),
    ([{}, {"schedule": "sometimes"}], r"configs\[1\]: Unknown schedule"),
    ([{}, 0.1], r"configs\[1\] must be a dict"),
    ([], "configs is empty"),
    ({"lr": 0.1}, "configs must be a list of dicts"),
])
def test_bad_configurations_name_their_index(configs, message):
    X, y = problem("linear")
    with pytest.raises(ValueError, match=message):
        fo.fit_many(X, y, configs, epochs=1)


def test_run_many_epoch_checks_its_arrays():
    core = _backends._core
    X, y = problem("linear", n=20, d=3)
    from fastopt.engine import prepare
    problem_, _ = prepare(X, y, model="linear", penalty=None, alpha=0.0, l1_ratio=0.15,
                          fit_intercept=True, sample_weight=None)
    data = _backends.resolve("cpp").dataset(problem_)
    spec = _backends.cpp.model_spec(problem_.spec)
    config = core.OptimConfig()
    params = np.zeros(4)
    lrs = np.full((2, 2), 0.1)
    with pytest.raises(ValueError, match="share memory|overlap"):
        core.run_many_epoch(data, [spec, spec], [params, params], [config, config], [{}, {}],
                            [0, 0], [1.0, 1.0], 10, True, 0, 0, lrs)
    with pytest.raises(ValueError, match="shape"):
        core.run_many_epoch(data, [spec, spec], [params, np.zeros(4)], [config, config],
                            [{}, {}], [0, 0], [1.0, 1.0], 10, True, 0, 0, lrs[:1])
    other = _backends.cpp.model_spec(fo.engine.ModelSpec("linear", 4))
    with pytest.raises(ValueError, match="configuration 1"):
        core.run_many_epoch(data, [spec, other], [params, np.zeros(4)], [config, config],
                            [{}, {}], [0, 0], [1.0, 1.0], 10, True, 0, 0, lrs)
    assert math.isfinite(core.run_many_epoch(
        data, [spec, spec], [params, np.zeros(4)], [config, config], [{}, {}], [0, 0],
        [1.0, 1.0], 10, True, 0, 0, lrs)[0][0])


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("layout", ["dense", "standardized", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_many_objective_is_objective(model, dtype, layout, backend):
    from fastopt.engine import prepare
    X, y = problem(model, n=211, d=7, dtype=dtype, sparse=layout == "csr")
    record = _backends.resolve(backend)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    prepared, _ = prepare(X, y, model=model, penalty="elasticnet", alpha=0.1, l1_ratio=0.3,
                          fit_intercept=True, sample_weight=weights,
                          standardize=layout == "standardized", backend=record)
    data = record.dataset(prepared)
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(prepared.spec.n_params).astype(dtype) for _ in range(19)]
    values = record.many_objective(data, params)  # 19: more than one group of 16
    # One block of objective's rows (n < 2048): the same bits; more rows: the same to rounding.
    assert values == [record.objective(data, p)[0] for p in params]
    X, y = problem(model, n=9000, d=7, dtype=dtype, sparse=layout == "csr")
    prepared, _ = prepare(X, y, model=model, penalty="elasticnet", alpha=0.1, l1_ratio=0.3,
                          fit_intercept=True, sample_weight=None,
                          standardize=layout == "standardized", backend=record)
    data = record.dataset(prepared)
    np.testing.assert_allclose(record.many_objective(data, params),
                               [record.objective(data, p)[0] for p in params], rtol=1e-13)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_callback_sees_each_configuration_and_can_stop_it(backend):
    X, y = problem("linear")
    seen = []

    def callback(entry):
        seen.append((entry["config"], entry["epoch"]))
        assert entry["params"].shape == (10,)
        return not (entry["config"] == 1 and entry["epoch"] == 2)

    configs = [{"lr": 0.01}, {"lr": 0.02}]
    shared = dict(epochs=4, batch_size=32, tol=None, random_state=0, backend=backend)
    results = fo.fit_many(X, y, configs, callback=callback, **shared)
    assert sorted(seen) == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    assert [r.n_iter_ for r in results] == [4, 2]
    stopped = fo.fit(X, y, **shared, lr=0.02, callback=lambda e: e["epoch"] < 2)
    assert_same(results[1], stopped)


TIMINGS = ("seconds", "ms_per_epoch", "seconds_to_target")


def same_rows(a, b):
    assert a.optimum == b.optimum
    assert [row["optimizer"] for row in a.rows] == [row["optimizer"] for row in b.rows]
    for row_a, row_b in zip(a.rows, b.rows):
        for key in set(row_a) | set(row_b):
            if key in ("accuracy", "r2"):  # one product of X with every model, or one each
                assert row_a[key] == pytest.approx(row_b[key], rel=1e-12)
            elif key not in TIMINGS:
                assert row_a[key] == row_b[key] or (
                    isinstance(row_a[key], float) and math.isnan(row_a[key])
                    and math.isnan(row_b[key])), (row_a["optimizer"], key)
    assert set(a.curves) == set(b.curves)
    for name in a.curves:
        for key in ("updates", "loss", "gap"):
            assert np.array_equal(a.curves[name][key], b.curves[name][key]), (name, key)


def test_compare_together_equals_separate_fits():
    pytest.importorskip("sklearn")
    from fastopt.comparison import compare
    names = ["gd", "sgd", "momentum", "adagrad", "adam", "radam", "lbfgs"]
    together = compare(optimizers=names, epochs=6, progress=False)
    separate_ = compare(optimizers=names, epochs=6, progress=False, together=False)
    same_rows(together, separate_)
    # The first-order optimizers with a minibatch shared their epochs, and their clock.
    shared = [together.rows[i]["ms_per_epoch"] for i in range(1, 6)]
    assert len(set(shared)) == 1
    assert len({row["ms_per_epoch"] for row in separate_.rows[1:6]}) > 1


def test_lr_sweep_together_equals_separate_fits():
    pytest.importorskip("sklearn")
    from fastopt.comparison import lr_sweep
    rates = (1e-3, 0.1, 1e3)  # the last diverges
    together = lr_sweep(optimizer="adam", lrs=rates, epochs=4, progress=False)
    separate_ = lr_sweep(optimizer="adam", lrs=rates, epochs=4, progress=False,
                         together=False)
    assert together.optimum == separate_.optimum
    assert list(together.runs) == list(separate_.runs) == list(rates)
    for rate in rates:
        same_rows(together.runs[rate], separate_.runs[rate])
    assert together.diverged() == separate_.diverged() == [1e3]


def test_bench_m1_runs(tmp_path):
    """``python -m bench --only M1`` at its smallest size (the numbers are not checked)."""
    pytest.importorskip("sklearn")
    import json
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "M1",
                           "--repeat", "1", "--json", str(out)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {row["contender"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["fastopt.fit_many, 8 rates"]["ratio"] > 0
    assert rows["compare, separate fits"]["ratio"] > 0


INTERRUPTED_CHILD = """
import sys
import numpy as np
import fastopt as fo
rng = np.random.default_rng(0)
X = rng.standard_normal((40000, 100))
model = sys.argv[1]
y = rng.integers(0, 100 if model == "softmax" else 2, len(X))
print("ready", flush=True)
try:
    fo.fit_many(X, y, [{"lr": 0.01}, {"lr": 0.02}, {"optimizer": "sgd"}], model=model,
                epochs=1000, tol=None, batch_size=None)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    small = fo.fit_many(X[:200, :5], y[:200] % 2, [{}, {}], model="logistic", epochs=2,
                        tol=None)
    print("refit", [r.n_iter_ for r in small], flush=True)
"""


@pytest.mark.skipif(__import__("sys").platform == "win32", reason="SIGINT differs on Windows")
@pytest.mark.parametrize("model", ["logistic", "softmax"])
def test_ctrl_c_interrupts_the_shared_epoch(model, tmp_path):
    # Full-batch epochs of ~40000 x 100 x 3 configurations: logistic goes through the
    # four-row loop of all the configurations, softmax through each one's own minibatch code.
    import signal
    import subprocess
    import sys
    import time
    with subprocess.Popen([sys.executable, "-c", INTERRUPTED_CHILD, model],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path) as child:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "interrupted"
        latency = time.perf_counter() - sent
        out = child.stdout.read()
        err = child.stderr.read()
        assert child.wait(timeout=60) == 0, err
    assert out.strip() == "refit [2, 2]"
    assert latency < 2.0, f"interrupt took {latency * 1e3:.0f} ms"


def test_default_tol_is_fits():
    # tol="auto" (fit's default): each configuration stops where its own fit stops.
    X, y = problem("logistic", n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fo.ConvergenceWarning)
        results = check_all(X, y, [{"lr": 0.05}, {"optimizer": "sgd", "lr": 0.5},
                                   {"lr": 1e-4}], model="logistic", epochs=60, random_state=0)
    assert any(r.converged for r in results) and not all(r.converged for r in results)


@pytest.mark.parametrize("target", _backends._core.cpu_targets())
def test_every_instruction_set_build(target):
    # The four-row loops have their own AVX2 code (dot4, dot4x2, axpy4x2, reduce16) and a
    # baseline fallback: both give each configuration its separate fit's bits.
    default = _backends._core.cpu_target()
    _backends._core.set_cpu_target(target)
    try:
        for model, standardize in (("linear", True), ("logistic", False)):
            X, y = problem(model, n=301, d=37, dtype=np.float32 if standardize else np.float64)
            check_all(X, y, spread_configs([fo.Adam(lr=0.02), fo.SGD(lr=0.1),
                                            fo.RMSprop(lr=0.01)]),
                      model=model, epochs=2, batch_size=30, tol=None, random_state=0,
                      standardize=standardize, backend="cpp")
    finally:
        _backends._core.set_cpu_target(default)
