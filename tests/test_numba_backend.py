"""The Numba backend against the C++ kernels it mirrors: optimizer steps equal to the last bit,
whole fits equal within tolerance (and to the last bit where checked), the shuffle against its
specification, epochs resumed at any row, Ctrl-C, the on-disk compile cache, and fastopt
without Numba."""

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import fastopt as fo
from fastopt import _backends
from fastopt.reference.shuffle import permutation as reference_permutation
from fastopt.engine import DivergenceError, TrainingState, prepare
import backend_calls  # noqa: E402

pytest.importorskip("numba")
nb = _backends._numba()
try:
    from fastopt import _core
except ImportError:  # pragma: no cover - a build without the compiled module
    _core = None

needs_cpp = pytest.mark.skipif(_core is None, reason="the compiled module is not built")
DTYPES = [np.float64, np.float32]
FIT_RTOL = {np.float64: 1e-10, np.float32: 1e-4}
MODELS = ["linear", "logistic", "softmax"]


def run_python(script, *, env=None, args=(), cwd=None, flags=()):
    """Run ``script`` in a fresh interpreter with warnings as errors; its stdout lines. It runs
    outside the source checkout (by default in the temporary directory): ``-c`` puts the
    working directory on sys.path, and the unbuilt fastopt/ there would shadow the install."""
    done = subprocess.run([sys.executable, *flags, "-W", "error", "-c", textwrap.dedent(script),
                           *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd or tempfile.gettempdir())
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


# ---------------------------------------------------------------------------------------------
# Optimizer steps

@needs_cpp
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_step_is_bitwise_equal_to_cpp(optimizer, dtype, rng, gradients):
    params = rng.standard_normal(1001).astype(dtype)  # not a multiple of any vector width
    a, b = params.copy(), params.copy()
    state_a, state_b = optimizer.init(a), optimizer.init(b)
    for grad in gradients(1001, dtype):
        optimizer.step(a, grad, state_a, backend="cpp")
        optimizer.step(b, grad, state_b, backend="numba")
    assert b.dtype == dtype
    np.testing.assert_array_equal(b, a)
    assert state_b.keys() == state_a.keys()
    for name in state_a:
        np.testing.assert_array_equal(state_b[name], state_a[name])


@needs_cpp
def test_step_on_a_matrix_and_with_an_lr_override(rng):
    opt = fo.NAdam(lr=0.01)
    a = rng.standard_normal((7, 11)).astype(np.float32)
    b = a.copy()
    state_a, state_b = opt.init(a), opt.init(b)
    for t in range(5):
        grad = rng.standard_normal((7, 11)).astype(np.float32)
        opt.step(a, grad, state_a, lr=0.1 / (t + 1), backend="cpp")
        opt.step(b, grad, state_b, lr=0.1 / (t + 1), backend="numba")
    np.testing.assert_array_equal(b, a)
    assert state_b["mu_product"] == state_a["mu_product"] and state_b["step"] == 5


def _bad_arguments():
    """(label, params, grad, state-maker) cases that the C++ binding refuses."""
    p = np.zeros(6)
    g = np.ones(6)
    read_only = np.zeros(6)
    read_only.setflags(write=False)
    shared = np.zeros(12)
    return [
        ("params not an array", [0.0] * 6, g, None),
        ("integer params", np.zeros(6, dtype=np.int64), g, None),
        ("strided params", np.zeros(12)[::2], g, None),
        ("read-only params", read_only, g, None),
        ("grad dtype", p, g.astype(np.float32), None),
        ("grad shape", p, np.ones(5), None),
        ("grad not an array", p, [1.0] * 6, None),
        ("strided grad", p, np.ones(12)[::2], None),
        ("grad is params", p, p, None),
        ("state dtype", p, g, lambda s: s.update(exp_avg=np.zeros(6, np.float32))),
        ("state shape", p, g, lambda s: s.update(exp_avg_sq=np.zeros(7))),
        ("state read-only", p, g, lambda s: s.update(exp_avg=read_only)),
        ("state overlaps params", shared[:6], g, lambda s: s.update(exp_avg=shared[3:9])),
        ("negative step", p, g, lambda s: s.update(step=-1)),
    ]


@needs_cpp
@pytest.mark.parametrize("label, params, grad, change", _bad_arguments(),
                         ids=[case[0] for case in _bad_arguments()])
def test_step_refuses_what_cpp_refuses_with_the_same_message(label, params, grad, change):
    opt = fo.Adam()
    errors = []
    for backend in ("cpp", "numba"):
        state = opt.init(np.zeros(6))
        if change is not None:
            change(state)
        with pytest.raises((TypeError, ValueError)) as info:
            opt.step(params, grad, state, backend=backend)
        errors.append((type(info.value), str(info.value)))
    assert errors[1] == errors[0]


# ---------------------------------------------------------------------------------------------
# Training

def _data(model, dtype, n=120, d=19, seed=0):
    rng = np.random.default_rng(seed)
    X = (0.3 * rng.standard_normal((n, d)) + rng.uniform(-1, 1, d)).astype(dtype)
    scores = (X - X.mean(axis=0)) @ rng.standard_normal(d)
    if model == "linear":
        return X, scores + 0.1 * rng.standard_normal(n)
    if model == "logistic":
        return X, np.where(scores > 0, "yes", "no")
    return X, np.digitize(scores, np.quantile(scores, [0.3, 0.6]))


def _fit_or_error(X, y, **kwargs):
    try:
        return fo.fit(X, y, **kwargs)
    except DivergenceError as exc:
        return str(exc)


@needs_cpp
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("model", MODELS)
def test_fit_matches_cpp(optimizer, model, dtype):
    # The options vary with the optimizer (a hash of its repr), so that across the table every
    # model meets penalties, weights, standardisation, no intercept and full batches.
    i = zlib.crc32(repr(optimizer).encode()) % 60
    X, y = _data(model, dtype, seed=i)
    weights = np.random.default_rng(i).uniform(0.2, 2.0, len(X)) if i % 2 else None
    options = dict(model=model, optimizer=optimizer, epochs=2, batch_size=(16, 25, None)[i % 3],
                   tol=None, random_state=i, penalty=("l2", "l1", "elasticnet", None)[i % 4],
                   alpha=1e-3, sample_weight=weights, standardize=(i // 3) % 2 == 0,
                   fit_intercept=i % 5 != 4, schedule=("cosine", None)[i % 2])
    cpp = _fit_or_error(X, y, backend="cpp", **options)
    numba = _fit_or_error(X, y, backend="numba", **options)
    if isinstance(cpp, str):
        assert numba == cpp
        return
    rtol = FIT_RTOL[dtype]
    np.testing.assert_allclose(numba.coef_, cpp.coef_, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(numba.intercept_, cpp.intercept_, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(numba.history["loss"], cpp.history["loss"], rtol=rtol)
    assert numba.history["steps"] == cpp.history["steps"]


@needs_cpp
@pytest.mark.parametrize("target", _core.cpu_targets() if _core else [])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_epochs_are_bitwise_equal_to_every_cpp_build(target, dtype):
    # The Numba loops mirror models.hpp lane for lane, fusing multiply-adds exactly when the
    # C++ build in use does (AVX2 + FMA), so whole trajectories agree to the last bit.
    default = _core.cpu_target()
    _core.set_cpu_target(target)
    try:
        for model, standardize, weights in [("linear", False, None), ("logistic", False, "w"),
                                            ("softmax", True, "w")]:
            X, y = _data(model, dtype, n=150, d=37)
            sw = np.linspace(0.5, 1.5, len(X)) if weights else None
            options = dict(model=model, optimizer=fo.Adam(lr=0.05, amsgrad=True), epochs=3,
                           batch_size=32, tol=None, random_state=7, standardize=standardize,
                           sample_weight=sw, penalty="elasticnet", alpha=1e-3)
            cpp = fo.fit(X, y, backend="cpp", **options)
            numba = fo.fit(X, y, backend="numba", **options)
            np.testing.assert_array_equal(numba.state.params, cpp.state.params)
            assert numba.history["loss"] == cpp.history["loss"]
    finally:
        _core.set_cpu_target(default)


@needs_cpp
@pytest.mark.parametrize("model", MODELS)
def test_objective_and_newton_match_cpp(model):
    X, y = _data(model, np.float64, n=90, d=21)
    weights = np.linspace(0.1, 3.0, len(X))
    for standardize in (False, True):
        problem, _ = prepare(X, y, model=model, penalty="l2", alpha=1e-2, l1_ratio=0.15,
                             fit_intercept=True, sample_weight=weights, standardize=standardize)
        params = np.random.default_rng(1).standard_normal(problem.spec.n_params)
        value_cpp, grad_cpp = backend_calls.objective("cpp", problem, params)
        value_nb, grad_nb = backend_calls.objective("numba", problem, params)
        assert grad_nb.dtype == np.float64
        assert value_nb == pytest.approx(value_cpp, rel=1e-14)
        np.testing.assert_allclose(grad_nb, grad_cpp, rtol=1e-13, atol=1e-15)
    if model != "softmax":
        options = dict(model=model, optimizer="newton", epochs=5, tol=None)
        cpp, numba = (fo.fit(X, y, backend=b, **options) for b in ("cpp", "numba"))
        np.testing.assert_allclose(numba.coef_, cpp.coef_, rtol=1e-10)


@needs_cpp
def test_divergence_is_reported_at_the_same_update():
    X, y = _data("linear", np.float64)
    X = X * 1e4
    problem, _ = prepare(X, y, model="linear", penalty=None, alpha=0.0, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=None, standardize=False)
    outcomes = []
    for backend in ("cpp", "numba"):
        params = np.zeros(problem.spec.n_params)
        opt = fo.SGD(lr=1.0, momentum=0.9)
        state = TrainingState(params, opt, opt.init(params), seed=3)
        result = backend_calls.Epochs(backend)(problem, state, np.full(60, 1.0), 2, True)
        outcomes.append((result, params, state.optimizer_state["step"]))
    (cpp, p_cpp, step_cpp), (numba, p_nb, step_nb) = outcomes
    assert cpp[2] is False and 0 < cpp[3] < 59  # stopped inside the epoch
    assert numba[1:] == cpp[1:] and step_nb == step_cpp
    np.testing.assert_array_equal(p_nb, p_cpp)
    messages = [_fit_or_error(X, y, lr=1.0, optimizer="sgd", tol=None, backend=b)
                for b in ("cpp", "numba")]
    assert messages[1] == messages[0] and "non-finite" in messages[0]


def test_permutation_matches_the_reference():
    for n in (1, 2, 3, 1000, 12345):
        for seed in (0, 1, 2**63 + 12345, 2**64 - 1):
            for epoch in (0, 1, 1000):
                expected = reference_permutation(n, seed, epoch)
                np.testing.assert_array_equal(nb.permutation(n, seed, epoch), expected)
    positions = np.array([5, 0, 999])
    np.testing.assert_array_equal(nb.permutation(1000, 9, 2, positions),
                                  reference_permutation(1000, 9, 2, positions))


def _epoch_run(problem, optimizer, epochs=2, batch_size=7):
    params = np.zeros(problem.spec.n_params)
    state = TrainingState(params, optimizer, optimizer.init(params), seed=11)
    run = backend_calls.Epochs("numba")
    losses = []
    for _ in range(epochs):
        steps = -(-problem.n_samples // batch_size)
        losses.append(run(problem, state, np.linspace(0.05, 0.01, steps), batch_size, True))
        state.epochs += 1
    return losses, params, state.optimizer_state


def test_chunked_epoch_equals_unchunked(monkeypatch):
    # The epoch returns to Python every _WORK_PER_CALL multiply-adds (for Ctrl-C) and resumes
    # where it stopped, even inside a minibatch; the trajectory must not notice.
    X, y = _data("softmax", np.float64, n=50, d=19)
    problem, _ = prepare(X, y, model="softmax", penalty="l1", alpha=1e-3, l1_ratio=0.15,
                         fit_intercept=True, sample_weight=np.linspace(0.5, 1.5, 50),
                         standardize=True)
    whole = _epoch_run(problem, fo.NAdam(lr=0.05))
    whole_objective = backend_calls.objective("numba", problem, whole[1])
    calls = []
    kernel = nb._epoch_kernel

    def counting(*args):
        calls.append(1)
        return kernel(*args)

    monkeypatch.setattr(nb, "_epoch_kernel", counting)
    per_row = 19 * (2 * 3 + 1) + 1
    for budget in (1, 3 * per_row + 5):
        monkeypatch.setattr(nb, "_WORK_PER_CALL", budget)
        calls.clear()
        chunked = _epoch_run(problem, fo.NAdam(lr=0.05))
        assert len(calls) > 2 * 50 // 4  # the epochs really were cut into pieces
        assert chunked[0] == whole[0]
        np.testing.assert_array_equal(chunked[1], whole[1])
        for name in whole[2]:
            np.testing.assert_array_equal(chunked[2][name], whole[2][name])
        value, grad = backend_calls.objective("numba", problem, whole[1])
        assert value == whole_objective[0]
        np.testing.assert_array_equal(grad, whole_objective[1])


def test_fits_in_threads_give_the_sequential_results():
    # The kernels release the GIL; concurrent fits must not share scratch memory.
    X, y = _data("logistic", np.float32, n=400)
    options = dict(model="logistic", epochs=3, tol=None, batch_size=8, backend="numba")
    expected = [fo.fit(X, y, random_state=s, **options).coef_ for s in range(4)]
    results = [None] * 4

    def work(s):
        results[s] = fo.fit(X, y, random_state=s, **options).coef_

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# Choosing the backend, and running without Numba

def test_backends_reports_every_backend():
    status = fo.backends()
    assert list(status) == ["cpp", "numba", "cuda", "numpy"]
    assert status["numba"] == "available" and status["numpy"] == "available"
    assert all(v == "available" or v.startswith("unavailable: ") for v in status.values())


def test_environment_variable_selects_numba(monkeypatch):
    monkeypatch.setenv("FASTOPT_BACKEND", "numba")
    assert _backends.resolve("auto").name == "numba"
    assert _backends.resolve("auto").epoch is nb.epoch


@needs_cpp
def test_numba_is_imported_only_when_asked_for():
    out = run_python("""
        import sys
        import numpy as np
        import fastopt as fo
        fo.fit(np.eye(4), [0.0, 1.0, 2.0, 3.0], epochs=2, tol=None)
        print("numba" in sys.modules, fo._backends.resolve("auto").name)
    """)
    assert out[0] == "False cpp"


@needs_cpp
def test_without_numba(tmp_path):
    out = run_python("""
        import sys, warnings
        sys.modules["numba"] = None  # import fails as for a missing package
        import numpy as np
        import fastopt as fo
        print(fo._backends.resolve("auto").name)
        print(fo.backends()["numba"].startswith("unavailable: "))
        opt = fo.Adam(lr=0.1)
        params = np.zeros(3)
        state = opt.init(params)
        opt.step(params, np.ones(3), state)
        try:
            opt.step(params, np.ones(3), state, backend="numba")
        except ImportError as exc:
            print("ImportError", "backend 'numba' is unavailable" in str(exc))
    """)
    assert out[:3] == ["cpp", "True", "ImportError True"]


def test_without_compiled_module_auto_is_numba_with_one_warning():
    out = run_python("""
        import sys, warnings
        sys.modules["fastopt._core"] = None  # import fails as for a missing extension
        import numpy as np
        import fastopt as fo
        opt = fo.Adam(lr=0.1)
        params = np.zeros(3)
        state = opt.init(params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opt.step(params, np.ones(3), state)
            opt.step(params, np.ones(3), state)
        print(len(caught), caught[0].category.__name__, "Numba backend" in str(caught[0].message))
        print(fo._backends.resolve("auto").name, np.allclose(params, -0.2))
    """)
    assert out[:2] == ["1 RuntimeWarning True", "numba True"]


def test_without_compiled_module_and_numba_auto_is_numpy_with_one_warning():
    out = run_python("""
        import sys, warnings
        sys.modules["fastopt._core"] = None
        sys.modules["numba"] = None
        import numpy as np
        import fastopt as fo
        X, y = np.eye(4), np.arange(4.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fo.fit(X, y, epochs=2, tol=None)
            fo.fit(X, y, epochs=2, tol=None)
        message = str(caught[0].message)
        print(len(caught), caught[0].category.__name__, "NumPy reference" in message)
        print(fo._backends.resolve("auto").name)
    """)
    assert out[:2] == ["1 RuntimeWarning True", "numpy"]


# ---------------------------------------------------------------------------------------------
# Ctrl-C and compilation

CTRL_C_CHILD = """
    import sys, time
    import numpy as np
    import fastopt as fo
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40000, 100))
    y = rng.integers(0, 100, len(X))
    fo.fit(X[:300], y[:300], model="softmax", epochs=1, tol=None, backend="numba")  # compile
    print("ready", flush=True)
    try:
        fo.fit(X, y, model="softmax", epochs=1000, tol=None, batch_size=None, backend="numba")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        small = fo.fit(X[:200, :5], y[:200] % 2, model="logistic", epochs=2, tol=None,
                       backend="numba")
        print("refit", small.n_iter_, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_interrupts_a_numba_epoch_quickly(tmp_path):
    with subprocess.Popen([sys.executable, "-c", textwrap.dedent(CTRL_C_CHILD)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path) as child:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.7)  # inside the first full-batch epoch (~1 s of work each)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "interrupted"
        latency = time.perf_counter() - sent
        # Through the same buffered file: communicate() would miss what readline() buffered.
        out = child.stdout.read()
        err = child.stderr.read()
        assert child.wait(timeout=60) == 0, err
    assert out.strip() == "refit 2"
    # Each compiled call does 10-60 ms of work (~10 ms measured from SIGINT to the exception on
    # an idle machine); the budget leaves room for a loaded one.
    assert latency < 1.5, f"interrupt took {latency * 1e3:.0f} ms"


CACHE_CHILD = """
    import numpy as np
    import fastopt as fo
    from fastopt._backends import numba_jit as nb
    opt = fo.RMSprop(centered=True)
    params = np.zeros(5)
    opt.step(params, np.ones(5), opt.init(params), backend="numba")
    stats = nb._optimizer_step.stats
    print(nb.compile_cache_enabled(), len(stats.cache_hits), len(stats.cache_misses))
"""


def test_compile_cache_goes_to_numba_cache_dir(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = run_python(CACHE_CHILD, env=env)
    assert first[0] == "True 0 1"  # compiled, and saved ...
    assert list((tmp_path / "cache").rglob("*_optimizer_step*.nbi"))  # ... where asked
    second = run_python(CACHE_CHILD, env=env)
    assert second[0] == "True 1 0"  # loaded, not compiled


def test_read_only_installation_runs_without_cache(tmp_path):
    # numba#4908: cache=True fails where no cache directory can be written. A copy of the
    # package where neither __pycache__ nor the user's cache directory can be created stands
    # for a read-only installation (chmod would not stop root).
    package = Path(fo.__file__).parent
    copy = tmp_path / "site" / "fastopt"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    core = getattr(_core, "__file__", None)
    if core is not None and not (copy / Path(core).name).exists():
        shutil.copy(core, copy)
    for folder in [copy, copy / "reference", copy / "_backends"]:
        (folder / "__pycache__").write_text("a file where the cache directory would go")
    not_a_dir = tmp_path / "home"
    not_a_dir.write_text("")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
    env.update(HOME=str(not_a_dir), XDG_CACHE_HOME=str(not_a_dir / "cache"),
               PYTHONPATH=os.pathsep.join([str(copy.parent), sysconfig.get_paths()["purelib"],
                                           sysconfig.get_paths()["platlib"]]),
               PYTHONDONTWRITEBYTECODE="1")
    out = run_python("""
        import sys
        import numpy as np
        import fastopt as fo
        from fastopt._backends import numba_jit as nb
        print(fo.__file__.startswith(sys.argv[1]), nb.compile_cache_enabled())
        print(nb.permutation(5, 0, 0).tolist())
    """, env=env, args=[str(copy)], cwd=tmp_path, flags=["-S"])
    assert out[0] == "True False"
    assert out[1] == str(reference_permutation(5, 0, 0).tolist())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("model, intercept, weighted",
                         [("linear", True, True), ("logistic", True, False),
                          ("logistic", False, True), ("linear", False, False)])
def test_lean_row_loop_is_the_general_one(model, intercept, weighted, fused, dtype):
    # The loop for dense single-output X (its multiply-adds compiled fused or not) against the
    # building blocks it inlines: _dot, _loss_and_residual and _axpy, row by row. The fused
    # variant is what the AVX2 build's fits check against C++; the other one only here.
    rng = np.random.default_rng(7)
    n, d = 53, 37  # two 16-lane blocks and a tail
    X = rng.standard_normal((n, d)).astype(dtype)
    flat = X.reshape(-1)
    y = (rng.random(n) < 0.5).astype(np.float64) if model == "logistic" else rng.standard_normal(n)
    sw = rng.uniform(0.5, 2, n) if weighted else np.ones(0)
    w = rng.standard_normal(d + 1) * 0.3
    order = rng.permutation(n).astype(np.uint32)
    mi = np.zeros(8, dtype=np.int64)
    mi[nb.M_MODEL] = nb.MODEL_CODES[model]
    mi[nb.M_FEATURES], mi[nb.M_OUTPUTS] = d, 1
    mi[nb.M_INTERCEPT], mi[nb.M_WEIGHTS], mi[nb.M_FUSED] = intercept, weighted, fused
    lean = nb._dense_rows_one_output_fused if fused else nb._dense_rows_one_output_plain
    grad = np.zeros(d + 1)
    loss = lean(flat, y, sw, mi, w, grad, np.zeros(1), order, True, 5, n, 0.0, 3)

    expected_grad, expected_loss, f = np.zeros(d + 1), 0.0, np.zeros(1)
    for pos in range(5, n):
        r = np.int64(order[pos])
        score = nb._dot(w, np.int64(0), flat, r * d, d, fused)
        f[0] = score + w[d] if intercept else score
        row_loss = nb._loss_and_residual(mi[nb.M_MODEL], f, 1, y[r])
        weight = sw[r] if weighted else 1.0
        expected_loss += weight * row_loss
        nb._axpy(f[0] * weight, flat, r * d, expected_grad, np.int64(0), d, fused)
        if intercept:
            expected_grad[d] += f[0] * weight
    assert loss == expected_loss
    np.testing.assert_array_equal(grad, expected_grad)
