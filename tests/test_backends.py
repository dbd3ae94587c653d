"""Choosing the implementation: explicit names, FASTOPT_BACKEND, and the fallback when the
compiled module is missing."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastopt as fo
from fastopt import _backends


def test_auto_prefers_the_compiled_module(monkeypatch):
    monkeypatch.delenv("FASTOPT_BACKEND", raising=False)
    assert _backends.resolve("auto").name == "cpp"


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("FASTOPT_BACKEND", "numpy")
    assert _backends.resolve("auto").name == "numpy"
    assert _backends.resolve("cpp").name == "cpp"  # an explicit choice wins


def test_unknown_backend_lists_the_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="'cpp', 'numba', 'numpy'.*got 'fortran'"):
        _backends.resolve("fortran")
    monkeypatch.setenv("FASTOPT_BACKEND", "fortran")
    with pytest.raises(ValueError, match="got 'fortran'"):
        fo.SGD().step(np.zeros(2), np.ones(2), {"step": 0})


def test_without_compiled_module_falls_back_with_one_warning(tmp_path):
    # Without Numba too, so that "auto" ends at the reference (tests/test_numba_backend.py
    # covers the fallback to Numba).
    script = textwrap.dedent("""
        import sys, warnings
        sys.modules["fastopt._core"] = None  # import fails as for a missing extension
        sys.modules["numba"] = None
        import numpy as np
        import fastopt as fo
        opt = fo.Adam(lr=0.1)
        params = np.zeros(3)
        state = opt.init(params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opt.step(params, np.ones(3), state)
            opt.step(params, np.ones(3), state)
        print(len(caught), caught[0].category.__name__, "NumPy reference" in str(caught[0].message))
        print(np.allclose(params, -0.2))
        try:
            opt.step(params, np.ones(3), state, backend="cpp")
        except ImportError as exc:
            print("ImportError", "backend 'cpp' is unavailable" in str(exc))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split("\n")
    assert out[:3] == ["1 RuntimeWarning True", "True", "ImportError True"]


def test_make_optimizer_by_name_and_object():
    assert fo.make_optimizer("ADAM", lr=0.1) == fo.Adam(lr=0.1)
    sgd = fo.SGD(momentum=0.9)
    assert fo.make_optimizer(sgd) is sgd
    faster = fo.make_optimizer(sgd, lr=0.5)
    assert faster == fo.SGD(lr=0.5, momentum=0.9) and sgd.lr == 1e-3
    with pytest.raises(ValueError, match="'sgd', 'adagrad'.*got 'lbfgs'"):
        fo.make_optimizer("lbfgs")


def test_parameters_round_trip_and_repr():
    opt = fo.RMSprop(lr=0.1, centered=True)
    assert eval(repr(opt), {"RMSprop": fo.RMSprop}) == opt
    assert opt.set_params(momentum=0.5).momentum == 0.5
    with pytest.raises(ValueError, match="Invalid parameter 'beta'"):
        opt.set_params(beta=0.5)


@pytest.mark.parametrize("kwargs, error", [
    (dict(lr="0.1"), TypeError),
    (dict(lr=True), TypeError),
    (dict(betas=0.9), TypeError),
    (dict(lr=float("inf")), ValueError),
    (dict(amsgrad="yes"), TypeError),
])
def test_bad_hyperparameter_types(kwargs, error):
    with pytest.raises(error):
        fo.Adam(**kwargs)
