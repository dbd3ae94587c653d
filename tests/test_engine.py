"""The engine's structure: one contract table, one dataset per fit, shared option checks."""

import numpy as np
import pytest

import fastopt as fo
from fastopt import _backends
from fastopt._backends import contract

needs_cpp = pytest.mark.skipif(_backends._core is None, reason="needs the compiled module")


@needs_cpp
def test_compiled_codes_agree_with_the_contract_table():
    core = _backends._core
    for enum, names in ((core.Optim, contract.OPTIMIZERS), (core.Model, contract.MODELS),
                        (core.Penalty, contract.PENALTIES)):
        assert {name: int(value) for name, value in enum.__members__.items()} == {
            name: code for code, name in enumerate(names)}


def test_numba_and_cuda_take_their_codes_from_the_contract():
    from fastopt._backends import numba_jit
    assert (numba_jit._SGD, numba_jit._ADAM, numba_jit._RADAM) == (
        contract.OPTIMIZER_CODES["sgd"], contract.OPTIMIZER_CODES["adam"],
        contract.OPTIMIZER_CODES["radam"])
    flags, _ = numba_jit.optimizer_config("nadam", {})
    assert flags[numba_jit.F_KIND] == contract.OPTIMIZER_CODES["nadam"]


def test_state_names_follow_the_slot_order(optimizer):  # every row of OPTIMIZER_CASES
    slots = contract.STATE_SLOTS[optimizer._kind]
    names = optimizer._state_names()
    assert set(names) <= set(slots)
    assert list(names) == [name for name in slots if name in names]


@pytest.mark.parametrize("step", [2.5, -1, True, np.float64(0.5)])
@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_a_step_count_that_is_not_a_whole_number_is_refused(step, backend):
    if backend == "cpp" and _backends._core is None:
        pytest.skip("needs the compiled module")
    opt = fo.Adam()
    params = np.zeros(3)
    state = opt.init(params)
    state["step"] = step
    with pytest.raises(ValueError, match="step"):
        opt.step(params, np.ones(3), state, backend=backend)
    assert not params.any()


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_fit_builds_each_dataset_once(monkeypatch, backend, early_stopping):
    if backend == "cpp" and _backends._core is None:
        pytest.skip("needs the compiled module")
    record = _backends.resolve(backend)
    built = []

    def counting(problem):
        built.append(problem.n_samples)
        return record.dataset(problem)

    monkeypatch.setattr(_backends, "_record", lambda name: record._replace(dataset=counting))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    fo.fit(X, y, model="logistic", epochs=6, batch_size=16, tol=None, backend=backend,
           early_stopping=early_stopping, random_state=0)
    assert len(built) == (2 if early_stopping else 1)  # training rows (+ validation rows)


def test_front_ends_share_the_option_checks():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    y = X @ [1.0, 2.0, 3.0]
    messages = []
    for call in (lambda: fo.fit(X, y, shuffle="rows"),
                 lambda: fo.fit_stream((X, y), shuffle="rows")):
        with pytest.raises(ValueError) as info:
            call()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "shuffle" in messages[0]


def test_dask_takes_batch_size_none_as_fit_does():
    da = pytest.importorskip("dask.array")
    from fastopt import dask as fdask
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 3))
    y = X @ [1.0, -2.0, 0.5] + 1.0
    Xd, yd = da.from_array(X, chunks=(40, 3)), da.from_array(y, chunks=40)
    gradient = fdask.fit(Xd, yd, optimizer=fo.SGD(lr=0.1), epochs=30, batch_size=None,
                           strategy="gradient")
    local = fo.fit(X, y, optimizer=fo.SGD(lr=0.1), epochs=30, batch_size=None, tol=None)
    np.testing.assert_allclose(gradient.coef_, local.coef_, rtol=1e-10)
    average = fdask.fit(Xd, yd, optimizer=fo.SGD(lr=0.1), epochs=30, batch_size=None,
                          strategy="average")
    assert average.n_iter_ == 30
    with pytest.raises(ValueError, match="batch_size"):
        fdask.fit(Xd, yd, batch_size=0)
