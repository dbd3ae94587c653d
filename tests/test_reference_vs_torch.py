"""The NumPy reference equals torch.optim (single-tensor path, foreach=False) update by update,
on parameters and on every state array."""

import numpy as np
import pytest

import fastopt as fo

torch = pytest.importorskip("torch")

TORCH_CLASSES = {cls: getattr(torch.optim, cls.__name__) for cls in fo.OPTIMIZERS.values()}


@pytest.fixture(autouse=True)
def torch_float64_scalars():
    # torch keeps NAdam's mu_product and the step counters in the default dtype; float64 makes
    # them comparable with the reference's Python floats at 1e-10.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def torch_optimizer(optimizer, tensor):
    return TORCH_CLASSES[type(optimizer)]([tensor], foreach=False, **optimizer.get_params())


def assert_close(actual, expected, rtol):
    scale = max(np.max(np.abs(expected)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * 1e-2 * scale)


def test_reference_matches_torch(optimizer, rng, gradients):
    size = 257
    params = rng.standard_normal(size)
    state = optimizer.init(params)
    tensor = torch.nn.Parameter(torch.tensor(params))
    reference_torch = torch_optimizer(optimizer, tensor)

    for t, grad in enumerate(gradients(size, np.float64)):
        optimizer.step(params, grad, state, backend="numpy")
        tensor.grad = torch.tensor(grad)
        reference_torch.step()
        assert_close(params, tensor.detach().numpy(), rtol=1e-10)

    torch_state = reference_torch.state[tensor]
    assert state["step"] == t + 1
    for name in optimizer._state_names():
        assert_close(state[name], torch_state[name].numpy(), rtol=1e-10)
    if "mu_product" in state:
        assert state["mu_product"] == pytest.approx(float(torch_state["mu_product"]), rel=1e-12)


@pytest.mark.parametrize("cls", list(fo.OPTIMIZERS.values()), ids=lambda c: c.__name__)
def test_defaults_match_torch(cls):
    import inspect

    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(TORCH_CLASSES[cls]).parameters
    for name, parameter in ours.items():
        assert name in theirs, name
        assert parameter.default == theirs[name].default, name


@pytest.mark.parametrize("cls, kwargs", [
    (fo.SGD, dict(lr=-1.0)),
    (fo.SGD, dict(momentum=-0.5)),
    (fo.SGD, dict(weight_decay=-1e-3)),
    (fo.SGD, dict(nesterov=True)),
    (fo.SGD, dict(momentum=0.9, dampening=0.1, nesterov=True)),
    (fo.Adagrad, dict(lr_decay=-1.0)),
    (fo.Adagrad, dict(initial_accumulator_value=-1.0)),
    (fo.Adagrad, dict(eps=-1e-10)),
    (fo.RMSprop, dict(alpha=-0.1)),
    (fo.RMSprop, dict(momentum=-1.0)),
    (fo.RMSprop, dict(eps=-1.0)),
    (fo.Adadelta, dict(rho=1.5)),
    (fo.Adadelta, dict(lr=-0.1)),
    (fo.Adam, dict(betas=(1.5, 0.999))),
    (fo.Adam, dict(betas=(0.9, 1.0))),
    (fo.Adam, dict(eps=-1.0)),
    (fo.AdamW, dict(weight_decay=-0.1)),
    (fo.NAdam, dict(momentum_decay=-1.0)),
    (fo.NAdam, dict(betas=(-0.1, 0.9))),
    (fo.RAdam, dict(lr=float("nan"))),
])
def test_refusals_have_torch_wording(cls, kwargs):
    with pytest.raises(ValueError) as ours:
        cls(**kwargs)
    with pytest.raises(ValueError) as theirs:
        TORCH_CLASSES[cls]([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    assert str(ours.value) == str(theirs.value)
