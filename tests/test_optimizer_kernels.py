"""The compiled optimizer kernels against the NumPy reference, and the promises of the step API:
in-place updates, refusals instead of silent copies, resumable state."""

import numpy as np
import pytest

import fastopt as fo

from fastopt import _core

RTOL = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def run_both(optimizer, params, grads, backend_a="cpp", backend_b="numpy"):
    a, b = params.copy(), params.copy()
    state_a, state_b = optimizer.init(a), optimizer.init(b)
    for grad in grads:
        optimizer.step(a, grad, state_a, backend=backend_a)
        optimizer.step(b, grad, state_b, backend=backend_b)
    return (a, state_a), (b, state_b)


def assert_states_close(optimizer, state_a, state_b, rtol):
    assert state_a["step"] == state_b["step"]
    for name in optimizer._state_names():
        np.testing.assert_allclose(state_a[name], state_b[name], rtol=rtol, atol=0)
    if "mu_product" in state_a:
        assert state_a["mu_product"] == pytest.approx(state_b["mu_product"], rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_cpp_matches_reference(optimizer, dtype, size, rng, gradients):
    params = rng.standard_normal(size).astype(dtype)
    (p_cpp, s_cpp), (p_ref, s_ref) = run_both(optimizer, params, gradients(size, dtype))
    assert p_cpp.dtype == dtype
    np.testing.assert_allclose(p_cpp, p_ref, rtol=RTOL[dtype], atol=0)
    assert_states_close(optimizer, s_cpp, s_ref, RTOL[dtype])


ONE_PER_KIND = [fo.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
                fo.Adagrad(lr_decay=0.01), fo.RMSprop(centered=True, momentum=0.5),
                fo.Adadelta(weight_decay=0.1), fo.Adam(amsgrad=True), fo.AdamW(),
                fo.NAdam(), fo.RAdam(betas=(0.5, 0.9))]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("opt", ONE_PER_KIND, ids=repr)
def test_cpp_matches_reference_large(opt, dtype, rng, gradients):
    size = 1_000_003  # not a multiple of any vector width: exercises the scalar tail
    params = rng.standard_normal(size).astype(dtype)
    (p_cpp, s_cpp), (p_ref, s_ref) = run_both(opt, params, gradients(size, dtype, steps=3))
    np.testing.assert_allclose(p_cpp, p_ref, rtol=RTOL[dtype], atol=0)
    assert_states_close(opt, s_cpp, s_ref, RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_instruction_set_builds_agree_bitwise(optimizer, dtype, rng, gradients):
    # Compiled without FMA contraction, every build rounds identically: results do not depend
    # on the CPU the wheel runs on.
    params = rng.standard_normal(1001).astype(dtype)
    grads = gradients(1001, dtype, steps=20)
    results = []
    default = _core.cpu_target()
    try:
        for target in _core.cpu_targets():
            _core.set_cpu_target(target)
            p = params.copy()
            state = optimizer.init(p)
            for grad in grads:
                optimizer.step(p, grad, state, backend="cpp")
            results.append(p)
    finally:
        _core.set_cpu_target(default)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_set_cpu_target_refuses_unknown():
    with pytest.raises(ValueError, match="avx9000"):
        _core.set_cpu_target("avx9000")


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_zero_gradient_leaves_params_bit_identical(optimizer, dtype, backend, rng):
    hyper = optimizer.get_params()
    hyper["weight_decay"] = 0.0
    opt = type(optimizer)(**hyper)
    params = rng.standard_normal(33).astype(dtype)
    before = params.copy()
    state = opt.init(params)
    opt.step(params, np.zeros_like(params), state, backend=backend)
    assert params.tobytes() == before.tobytes()
    assert state["step"] == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_state_saved_with_savez_resumes_bit_identically(optimizer, dtype, rng, gradients, tmp_path):
    grads = gradients(50, dtype, steps=40)
    params = rng.standard_normal(50).astype(dtype)
    state = optimizer.init(params)
    for grad in grads[:20]:
        optimizer.step(params, grad, state)
    np.savez(tmp_path / "state.npz", params=params, **state)

    for grad in grads[20:]:
        optimizer.step(params, grad, state)

    with np.load(tmp_path / "state.npz") as saved:
        loaded = dict(saved)
    resumed = loaded.pop("params")
    for grad in grads[20:]:
        optimizer.step(resumed, grad, loaded)
    assert resumed.tobytes() == params.tobytes()
    assert int(loaded["step"]) == state["step"] == 40
    for name in optimizer._state_names():
        assert loaded[name].tobytes() == state[name].tobytes()


def test_learning_rate_override_applies_to_one_step(rng):
    opt = fo.SGD(lr=1.0)
    params = np.ones(4)
    state = opt.init(params)
    opt.step(params, np.ones(4), state, lr=0.25)
    np.testing.assert_array_equal(params, np.full(4, 0.75))
    opt.step(params, np.ones(4), state)
    np.testing.assert_array_equal(params, np.full(4, -0.25))


def test_multidimensional_params_update_in_place(rng):
    opt = fo.Adam(lr=0.1)
    params = rng.standard_normal((3, 4))
    view = params  # the caller's reference must see the update
    state = opt.init(params)
    opt.step(params, np.ones((3, 4)), state)
    assert view is params and state["exp_avg"].shape == (3, 4)
    np.testing.assert_allclose(state["exp_avg"], 0.1)


def test_empty_params_only_count_the_step():
    opt = fo.Adam()
    params = np.zeros(0)
    state = opt.init(params)
    opt.step(params, np.zeros(0), state)
    assert state["step"] == 1


# --- refusals: a hidden copy would lose the update, so nothing is converted silently ----------

def _adam_args(dtype=np.float64, size=8):
    opt = fo.Adam()
    params = np.zeros(size, dtype=dtype)
    return opt, params, np.ones(size, dtype=dtype), opt.init(params)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_grad_of_another_dtype(backend):
    opt, params, grad, state = _adam_args()
    with pytest.raises(TypeError, match="grad has dtype float32 but params has dtype float64"):
        opt.step(params, grad.astype(np.float32), state, backend=backend)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_state_of_another_dtype(backend):
    opt, params, grad, state = _adam_args(np.float32)
    state["exp_avg_sq"] = state["exp_avg_sq"].astype(np.float64)
    with pytest.raises(TypeError, match=r"state\['exp_avg_sq'\] has dtype float64"):
        opt.step(params, grad, state, backend=backend)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_mismatched_sizes(backend):
    opt, params, grad, state = _adam_args()
    with pytest.raises(ValueError, match=r"grad has shape \(7,\) but params has shape \(8,\)"):
        opt.step(params, grad[:7].copy(), state, backend=backend)
    state["exp_avg"] = np.zeros(9)
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] has shape \(9,\)"):
        opt.step(params, grad, state, backend=backend)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_read_only_params(backend):
    opt, params, grad, state = _adam_args()
    params.flags.writeable = False
    with pytest.raises(ValueError, match="params is read-only"):
        opt.step(params, grad, state, backend=backend)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_integer_params(backend):
    opt = fo.SGD()
    with pytest.raises(TypeError, match="float32 or float64"):
        opt.init(np.zeros(3, dtype=np.int64))
    params = np.zeros(3, dtype=np.int64)
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        opt.step(params, np.zeros(3, dtype=np.int64), {"step": 0}, backend=backend)


def test_refuses_non_contiguous_arrays():
    opt = fo.Adam()
    base = np.zeros(16)
    params = base[::2]
    state = opt.init(params)
    with pytest.raises(ValueError, match="params must be C-contiguous"):
        opt.step(params, np.ones(8), state)
    params = np.zeros(8)
    with pytest.raises(ValueError, match="grad must be C-contiguous"):
        opt.step(params, np.ones(16)[::2], state)
    fortran = np.zeros((3, 4), order="F")
    with pytest.raises(ValueError, match="params must be C-contiguous"):
        opt.step(fortran, np.ones((3, 4)), opt.init(np.zeros((3, 4))))


def test_refuses_non_arrays():
    opt = fo.SGD()
    with pytest.raises(TypeError, match="params must be a numpy.ndarray, got list"):
        opt.step([0.0, 1.0], np.ones(2), {"step": 0})
    with pytest.raises(TypeError, match="grad must be a numpy.ndarray, got list"):
        opt.step(np.zeros(2), [1.0, 1.0], {"step": 0})


def test_refuses_aliased_arrays():
    opt, params, grad, state = _adam_args()
    with pytest.raises(ValueError, match="params and grad share memory"):
        opt.step(params, params, state)
    state["exp_avg_sq"] = state["exp_avg"]
    with pytest.raises(ValueError, match="share memory"):
        opt.step(params, grad, state)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_refuses_incomplete_state(backend):
    opt, params, grad, state = _adam_args()
    del state["exp_avg"]
    with pytest.raises(ValueError, match=r"state has no 'exp_avg'; make the state with Adam"):
        opt.step(params, grad, state, backend=backend)


def test_refused_step_changes_nothing():
    opt, params, grad, state = _adam_args()
    state["exp_avg_sq"] = state["exp_avg_sq"].astype(np.float32)
    before = {k: np.copy(v) for k, v in state.items()}
    with pytest.raises(TypeError):
        opt.step(params, grad, state)
    assert state["step"] == 0 and not params.any()
    np.testing.assert_array_equal(state["exp_avg"], before["exp_avg"])


def test_changing_a_hyperparameter_after_a_step_takes_effect():
    opt = fo.SGD(lr=0.1, momentum=0.9)
    params = np.zeros(3)
    state = opt.init(params)
    opt.step(params, np.ones(3), state)
    opt.momentum = 0.0  # the cached kernel configuration must follow
    opt.step(params, np.ones(3), state)
    np.testing.assert_allclose(params, -0.2)
