"""Learning-rate schedules: against a per-t Python reference of each formula, against
torch.optim.lr_scheduler stepped once per update, and their API (vectorisation, resolve,
make_schedule, validation)."""

import math
import sys

import numpy as np
import pytest

from fastopt import schedules as fs

# --- the formulas, one t at a time, written from the docstrings / torch's closed forms -------


def ref_constant(s, t):
    return s.lr


def ref_invsqrt(s, t):
    return s.lr / math.sqrt(t + 1)


def ref_step(s, t):
    return s.lr * s.gamma ** (t // s.step_size)


def ref_exponential(s, t):
    return s.lr * s.gamma ** t


def ref_polynomial(s, t):
    return s.lr * (1 - min(t, s.total_iters) / s.total_iters) ** s.power


def ref_cosine(s, t):
    t = min(t, s.T_max)  # held at eta_min after T_max (documented difference from torch)
    return s.eta_min + (s.lr - s.eta_min) * (1 + math.cos(math.pi * t / s.T_max)) / 2


def ref_linear(s, t):
    fraction = min(t, s.total_iters) / s.total_iters
    return s.lr * (s.start_factor + (s.end_factor - s.start_factor) * fraction)


def ref_warmup_cosine(s, t):
    w, T = s.warmup_steps, s.max_steps
    if t < w:
        return s.warmup_begin_lr + (s.lr - s.warmup_begin_lr) * t / w
    if t >= T:
        return s.final_lr
    return s.final_lr + (s.lr - s.final_lr) * (1 + math.cos(math.pi * (t - w) / (T - w))) / 2


def ref_onecycle(s, t):
    n, p = s.total_steps, s.pct_start
    low_start = s.lr / s.div_factor
    low_end = low_start / s.final_div_factor
    if s.three_phase:
        phases = [(p * n - 1, low_start, s.lr), (2 * p * n - 2, s.lr, low_start),
                  (n - 1, low_start, low_end)]
    else:
        phases = [(p * n - 1, low_start, s.lr), (n - 1, s.lr, low_end)]
    begin = 0.0
    for i, (end, a, b) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct = min(1.0, (t - begin) / (end - begin)) if end > begin else 1.0
            if s.anneal_strategy == "cos":
                return b + (a - b) * (1 + math.cos(math.pi * pct)) / 2
            return a + (b - a) * pct
        begin = end


REFERENCE = {fs.Constant: ref_constant, fs.InverseSqrt: ref_invsqrt, fs.StepDecay: ref_step,
             fs.Exponential: ref_exponential, fs.Polynomial: ref_polynomial,
             fs.Cosine: ref_cosine, fs.Linear: ref_linear, fs.WarmupCosine: ref_warmup_cosine,
             fs.OneCycle: ref_onecycle}

CASES = [
    fs.Constant(lr=0.1),
    fs.InverseSqrt(lr=0.5),
    fs.StepDecay(lr=0.1, step_size=30),
    fs.StepDecay(lr=1.0, step_size=1, gamma=0.97),
    fs.StepDecay(lr=0.3, step_size=7, gamma=1.5),
    fs.Exponential(lr=0.1, gamma=0.99),
    fs.Exponential(lr=2.0, gamma=0.9),
    fs.Polynomial(lr=0.1, total_iters=5),
    fs.Polynomial(lr=0.1, total_iters=200, power=2.0),
    fs.Polynomial(lr=0.1, total_iters=120, power=0.5),
    fs.Cosine(lr=0.1, T_max=100),
    fs.Cosine(lr=0.1, T_max=299, eta_min=0.01),
    fs.Cosine(lr=0.01, T_max=1, eta_min=0.02),
    fs.Linear(lr=0.1),
    fs.Linear(lr=0.1, start_factor=1.0, end_factor=0.0, total_iters=250),
    fs.Linear(lr=0.2, start_factor=0.1, end_factor=0.7, total_iters=40),
    fs.WarmupCosine(lr=0.1, warmup_steps=20, max_steps=200),
    fs.WarmupCosine(lr=1.0, warmup_steps=0, max_steps=50, final_lr=0.1),
    fs.WarmupCosine(lr=0.5, warmup_steps=30, max_steps=31, warmup_begin_lr=0.05, final_lr=0.2),
    fs.WarmupCosine(lr=0.5, warmup_steps=10, max_steps=10, warmup_begin_lr=0.05, final_lr=0.2),
    fs.OneCycle(lr=0.1, total_steps=300),
    fs.OneCycle(lr=1.0, total_steps=100, pct_start=0.25, anneal_strategy="linear",
                div_factor=10.0, final_div_factor=100.0),
    fs.OneCycle(lr=0.1, total_steps=250, pct_start=0.4, three_phase=True),
    fs.OneCycle(lr=0.1, total_steps=77, pct_start=0.0),
    fs.OneCycle(lr=0.1, total_steps=77, pct_start=1.0, anneal_strategy="linear"),
]


@pytest.fixture(params=CASES, ids=repr)
def schedule(request):
    return request.param


def expected(schedule, t):
    reference = REFERENCE[type(schedule)]
    return np.array([reference(schedule, int(x)) for x in np.ravel(t)]).reshape(np.shape(t))


def test_matches_formula(schedule, rng):
    t = np.concatenate([np.arange(0, 320), rng.integers(0, 5000, size=300)]).reshape(20, 31)
    np.testing.assert_allclose(schedule(t), expected(schedule, t), rtol=1e-12, atol=1e-15)


def test_warmup_cosine_landmarks():
    s = fs.WarmupCosine(lr=1.0, warmup_steps=10, max_steps=110, warmup_begin_lr=0.2,
                        final_lr=0.1)
    assert s(0) == 0.2
    assert s(5) == pytest.approx(0.6)
    assert s(10) == 1.0
    assert s(60) == pytest.approx(0.55)  # half-way down the cosine
    assert s(110) == pytest.approx(0.1)
    assert s(10_000) == 0.1
    assert np.all(np.diff(s(np.arange(0, 11))) > 0)
    assert np.all(np.diff(s(np.arange(10, 111))) < 0)


def test_held_after_the_end():
    assert np.all(fs.Cosine(lr=1.0, T_max=50, eta_min=0.1)(np.arange(50, 500)) == 0.1)
    one_cycle = fs.OneCycle(lr=1.0, total_steps=50)
    assert np.all(one_cycle(np.arange(49, 500)) == pytest.approx(1.0 / 25 / 1e4))
    assert np.all(fs.Polynomial(lr=1.0, total_iters=50)(np.arange(50, 500)) == 0.0)


# --- torch.optim.lr_scheduler, stepped once per update ------------------------------------

TORCH_CASES = [
    (fs.StepDecay(lr=0.1, step_size=30), "StepLR", dict(step_size=30)),
    (fs.StepDecay(lr=0.5, step_size=1, gamma=0.98), "StepLR", dict(step_size=1, gamma=0.98)),
    (fs.StepDecay(lr=0.5, step_size=64, gamma=0.5), "StepLR", dict(step_size=64, gamma=0.5)),
    (fs.Exponential(lr=0.1, gamma=0.99), "ExponentialLR", dict(gamma=0.99)),
    (fs.Exponential(lr=1.0, gamma=0.95), "ExponentialLR", dict(gamma=0.95)),
    (fs.Polynomial(lr=0.1, total_iters=5), "PolynomialLR", dict(total_iters=5)),
    (fs.Polynomial(lr=0.1, total_iters=250, power=2.0), "PolynomialLR",
     dict(total_iters=250, power=2.0)),
    (fs.Polynomial(lr=0.3, total_iters=299, power=0.5), "PolynomialLR",
     dict(total_iters=299, power=0.5)),
    (fs.Cosine(lr=0.1, T_max=299), "CosineAnnealingLR", dict(T_max=299)),
    (fs.Cosine(lr=0.1, T_max=100, eta_min=0.01), "CosineAnnealingLR",
     dict(T_max=100, eta_min=0.01)),
    (fs.Cosine(lr=0.1, T_max=1000, eta_min=0.001), "CosineAnnealingLR",
     dict(T_max=1000, eta_min=0.001)),
    (fs.Linear(lr=0.1), "LinearLR", {}),
    (fs.Linear(lr=0.1, start_factor=1.0, end_factor=0.0, total_iters=299), "LinearLR",
     dict(start_factor=1.0, end_factor=0.0, total_iters=299)),
    (fs.Linear(lr=0.2, start_factor=0.05, end_factor=0.8, total_iters=120), "LinearLR",
     dict(start_factor=0.05, end_factor=0.8, total_iters=120)),
    (fs.OneCycle(lr=0.1, total_steps=300), "OneCycleLR", dict(max_lr=0.1, total_steps=300)),
    (fs.OneCycle(lr=1.0, total_steps=250, pct_start=0.25, anneal_strategy="linear",
                 div_factor=10.0, final_div_factor=100.0), "OneCycleLR",
     dict(max_lr=1.0, total_steps=250, pct_start=0.25, anneal_strategy="linear",
          div_factor=10.0, final_div_factor=100.0)),
    (fs.OneCycle(lr=0.1, total_steps=300, pct_start=0.4, three_phase=True), "OneCycleLR",
     dict(max_lr=0.1, total_steps=300, pct_start=0.4, three_phase=True)),
    (fs.OneCycle(lr=0.1, total_steps=101, pct_start=0.0), "OneCycleLR",
     dict(max_lr=0.1, total_steps=101, pct_start=0.0)),
]


def torch_lrs(name, kwargs, lr, updates):
    """The learning rate torch uses for each of ``updates`` optimizer updates."""
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=lr)
    if name == "OneCycleLR":
        kwargs = dict(kwargs, cycle_momentum=False)
    scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(updates - 1):
        param.grad = torch.ones_like(param)
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return np.array(lrs, dtype=np.float64)


def torch_updates(schedule):
    """300 updates, or as many as torch agrees with: cosine up to T_max, one-cycle its length."""
    if isinstance(schedule, fs.Cosine):
        return min(300, schedule.T_max + 1)
    if isinstance(schedule, fs.OneCycle):
        return schedule.total_steps
    return 300


@pytest.mark.parametrize("ours, name, kwargs", TORCH_CASES, ids=[repr(c[0]) for c in TORCH_CASES])
def test_matches_torch(ours, name, kwargs):
    updates = torch_updates(ours)
    expected_lrs = torch_lrs(name, kwargs, ours.lr, updates)
    np.testing.assert_allclose(ours(np.arange(updates)), expected_lrs, rtol=1e-10, atol=1e-16)


def test_matches_torch_across_epochs():
    """Evaluated an epoch at a time from a running counter, as the fit loop does."""
    ours = fs.OneCycle(lr=0.1, total_steps=7 * 43)
    lrs = np.concatenate([ours(np.arange(t0, t0 + 43)) for t0 in range(0, 7 * 43, 43)])
    expected_lrs = torch_lrs("OneCycleLR", dict(max_lr=0.1, total_steps=7 * 43), 0.1, 7 * 43)
    np.testing.assert_allclose(lrs, expected_lrs, rtol=1e-10)


def test_warmup_cosine_matches_torch_warmup_then_cosine():
    """Linear warm-up then cosine is torch's LinearLR for W updates, then CosineAnnealingLR."""
    s = fs.WarmupCosine(lr=0.2, warmup_steps=40, max_steps=300, warmup_begin_lr=0.01,
                        final_lr=0.001)
    warmup = torch_lrs("LinearLR", dict(start_factor=0.01 / 0.2, end_factor=1.0,
                                        total_iters=40), 0.2, 40)
    cosine = torch_lrs("CosineAnnealingLR", dict(T_max=260, eta_min=0.001), 0.2, 261)
    np.testing.assert_allclose(s(np.arange(301)), np.concatenate([warmup, cosine]), rtol=1e-10)


def test_onecycle_matches_torch_property():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(total_steps=st.integers(2, 150), pct_start=st.floats(0.0, 1.0),
                      div_factor=st.floats(1.0, 100.0), final_div_factor=st.floats(1.0, 1e4),
                      anneal_strategy=st.sampled_from(["cos", "linear"]),
                      three_phase=st.booleans())
    def check(total_steps, pct_start, **kwargs):
        ours = fs.OneCycle(lr=0.1, total_steps=total_steps, pct_start=pct_start, **kwargs)
        try:
            theirs = torch_lrs("OneCycleLR", dict(max_lr=0.1, total_steps=total_steps,
                                                  pct_start=pct_start, **kwargs), 0.1, total_steps)
        except ZeroDivisionError:  # a zero-length phase; ours ends it at once (documented)
            hypothesis.reject()
        np.testing.assert_allclose(ours(np.arange(total_steps)), theirs, rtol=1e-9)

    check()


# --- vectorisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (1,), (17,), (3, 5), (2, 1, 4)])
def test_array_in_array_out(schedule, shape, rng):
    t = rng.integers(0, 1000, size=shape)
    lrs = schedule(t)
    assert isinstance(lrs, np.ndarray) and lrs.dtype == np.float64 and lrs.shape == shape
    assert schedule(t.astype(np.uint32)).tolist() == lrs.tolist()
    assert schedule(t.tolist()).tolist() == lrs.tolist()


def test_scalar_in_float_out(schedule):
    t = np.arange(0, 400, 7)
    lrs = schedule(t)
    for i, step in enumerate(t.tolist()):
        for scalar in (step, np.int64(step), np.array(step)):
            value = schedule(scalar)
            assert type(value) is float and value == lrs[i]


def test_no_python_work_per_update(schedule):
    """A call costs the same number of Python function calls for 10 updates as for 10**5."""
    def python_calls(t):
        calls = 0

        def profile(frame, event, arg):
            nonlocal calls
            calls += event == "call"

        sys.setprofile(profile)
        try:
            schedule(t)
        finally:
            sys.setprofile(None)
        return calls

    python_calls(np.arange(10))  # first-call imports and caches
    assert python_calls(np.arange(10**5) % 997) == python_calls(np.arange(10))


@pytest.mark.parametrize("t, error", [(1.0, TypeError), (np.array([0.0, 1.0]), TypeError),
                                      (True, TypeError), (-1, ValueError),
                                      (np.array([3, -2]), ValueError)])
def test_bad_steps(t, error):
    with pytest.raises(error, match="t must be"):
        fs.Constant(lr=0.1)(t)


def test_overflow_names_the_step():
    with pytest.raises(ValueError, match=r"learning rate inf at t=1024\b"):
        fs.Exponential(lr=1.0, gamma=2.0)(np.arange(2000))
    with pytest.raises(ValueError, match=r"learning rate nan at t=1024\b"):
        fs.StepDecay(lr=0.0, step_size=1, gamma=2.0)(np.arange(2000))


# --- resolve ---------------------------------------------------------------------------------


def test_resolve_fills_nones_and_returns_a_new_schedule():
    s = fs.Cosine(eta_min=0.01)
    resolved = s.resolve(0.1, 500)
    assert resolved == fs.Cosine(lr=0.1, T_max=500, eta_min=0.01)
    assert s.lr is None and s.T_max is None  # not mutated
    assert s.resolve() == s and s.resolve() is not s


def test_resolve_keeps_what_is_set():
    s = fs.OneCycle(lr=0.3, total_steps=40)
    assert s.resolve(0.1, 500) == s
    assert fs.Cosine(T_max=20).resolve(0.1, 500) == fs.Cosine(lr=0.1, T_max=20)
    assert fs.Cosine(lr=0.2).resolve(0.1) == fs.Cosine(lr=0.2)


@pytest.mark.parametrize("unresolved, resolved", [
    (fs.Constant(), fs.Constant(lr=0.1)),
    (fs.InverseSqrt(), fs.InverseSqrt(lr=0.1)),
    (fs.StepDecay(), fs.StepDecay(lr=0.1, step_size=333)),
    (fs.Exponential(), fs.Exponential(lr=0.1, gamma=0.01 ** (1 / 1000))),
    (fs.Polynomial(), fs.Polynomial(lr=0.1, total_iters=1000)),
    (fs.Cosine(), fs.Cosine(lr=0.1, T_max=1000)),
    (fs.Linear(total_iters=None), fs.Linear(lr=0.1, total_iters=1000)),
    (fs.WarmupCosine(), fs.WarmupCosine(lr=0.1, warmup_steps=50, max_steps=1000)),
    (fs.WarmupCosine(max_steps=200), fs.WarmupCosine(lr=0.1, warmup_steps=10, max_steps=200)),
    (fs.OneCycle(), fs.OneCycle(lr=0.1, total_steps=1000)),
], ids=repr)
def test_resolve_defaults(unresolved, resolved):
    assert unresolved.resolve(0.1, 1000) == resolved
    with pytest.raises(ValueError, match=r"resolve\(lr, total_steps\)"):
        unresolved(0)


def test_resolve_defaults_for_short_fits():
    assert fs.StepDecay().resolve(1.0, 2).step_size == 1
    assert fs.WarmupCosine().resolve(1.0, 10).warmup_steps == 0
    assert fs.Exponential().resolve(1.0, 10)(10) == pytest.approx(0.01)
    assert fs.WarmupCosine(max_steps=300).resolve(1.0).warmup_steps == 15


def test_partly_resolved_names_what_is_missing():
    with pytest.raises(ValueError, match="T_max unset"):
        fs.Cosine().resolve(lr=0.1)(np.arange(3))
    with pytest.raises(ValueError, match="lr unset"):
        fs.Cosine().resolve(total_steps=10)(np.arange(3))


def test_resolve_validates():
    with pytest.raises(ValueError, match="warmup_steps"):
        fs.WarmupCosine(warmup_steps=100).resolve(0.1, 50)
    with pytest.raises(ValueError, match="total_steps"):
        fs.Cosine().resolve(0.1, 0)
    with pytest.raises(TypeError, match="total_steps"):
        fs.Cosine().resolve(0.1, 10.5)
    with pytest.raises(ValueError, match="learning rate"):
        fs.Cosine().resolve(-0.1, 10)


# --- make_schedule ---------------------------------------------------------------------------


def test_make_schedule_none_is_constant():
    assert fs.make_schedule(None, 0.1, 100) == fs.Constant(lr=0.1)
    assert fs.make_schedule() == fs.Constant()


@pytest.mark.parametrize("name", sorted(fs.SCHEDULES))
def test_make_schedule_by_name_with_defaults(name):
    s = fs.make_schedule(name, 0.1, 1000)
    assert type(s) is fs.SCHEDULES[name]
    assert None not in s.get_params().values()
    assert fs.make_schedule(fs.SCHEDULES[name], 0.1, 1000) == s
    lrs = s(np.arange(1000))
    assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0) and lrs.max() <= 0.1 + 1e-15


def test_make_schedule_instance_is_resolved():
    spec = fs.WarmupCosine(warmup_steps=10, final_lr=0.001)
    assert fs.make_schedule(spec, 0.1, 100) == spec.resolve(0.1, 100)
    assert spec.lr is None


def test_make_schedule_callable():
    s = fs.make_schedule(lambda t: 0.5 / (1.0 + t), 0.1, 100)
    assert isinstance(s, fs.FunctionSchedule)
    np.testing.assert_array_equal(s(np.arange(50)), 0.5 / (1.0 + np.arange(50)))
    assert s(3) == 0.125
    assert s.resolve(0.2, 10) == s


@pytest.mark.parametrize("fn, match", [
    (lambda t: 0.35 - 0.1 * t, r"-0.05\d* at t=4\b"),
    (lambda t: np.where(t == 7, np.nan, 0.1), r"nan at t=7\b"),
    (lambda t: np.where(t >= 5, np.inf, 0.1), r"inf at t=5\b"),
    (lambda t: 0.1, "shape"),
    (lambda t: np.full(len(t) + 1, 0.1), "shape"),
])
def test_make_schedule_bad_callable(fn, match):
    s = fs.make_schedule(fn, 0.1, 100)
    with pytest.raises(ValueError, match=match):
        s(np.arange(10))


def test_make_schedule_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Unknown schedule 'cosin'") as info:
        fs.make_schedule("cosin")
    for name in fs.SCHEDULES:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("spec", [0.1, 3, ["cosine"]])
def test_make_schedule_wrong_type(spec):
    with pytest.raises(TypeError, match="schedule must be"):
        fs.make_schedule(spec)


# --- construction: validation and scikit-learn parameters ------------------------------------


@pytest.mark.parametrize("cls, kwargs, error, match", [
    (fs.Constant, dict(lr=-0.1), ValueError, "learning rate"),
    (fs.InverseSqrt, dict(lr=math.nan), ValueError, "learning rate"),
    (fs.Constant, dict(lr="0.1"), TypeError, "lr"),
    (fs.StepDecay, dict(step_size=0), ValueError, "step_size"),
    (fs.StepDecay, dict(step_size=2.5), TypeError, "step_size"),
    (fs.StepDecay, dict(step_size=True), TypeError, "step_size"),
    (fs.StepDecay, dict(gamma=0.0), ValueError, "gamma"),
    (fs.StepDecay, dict(gamma=-0.5), ValueError, "gamma"),
    (fs.Exponential, dict(gamma=0.0), ValueError, "gamma"),
    (fs.Exponential, dict(gamma=math.inf), ValueError, "gamma"),
    (fs.Polynomial, dict(total_iters=0), ValueError, "total_iters"),
    (fs.Polynomial, dict(power=-1.0), ValueError, "power"),
    (fs.Cosine, dict(T_max=0), ValueError, "T_max"),
    (fs.Cosine, dict(eta_min=-0.1), ValueError, "eta_min"),
    (fs.Linear, dict(start_factor=-0.1), ValueError, "start_factor"),
    (fs.Linear, dict(end_factor=math.nan), ValueError, "end_factor"),
    (fs.Linear, dict(total_iters=0), ValueError, "total_iters"),
    (fs.WarmupCosine, dict(warmup_steps=11, max_steps=10), ValueError, "warmup_steps"),
    (fs.WarmupCosine, dict(warmup_steps=-1), ValueError, "warmup_steps"),
    (fs.WarmupCosine, dict(max_steps=0), ValueError, "max_steps"),
    (fs.WarmupCosine, dict(warmup_begin_lr=-1.0), ValueError, "warmup_begin_lr"),
    (fs.WarmupCosine, dict(final_lr=math.inf), ValueError, "final_lr"),
    (fs.OneCycle, dict(total_steps=0), ValueError, "total_steps"),
    (fs.OneCycle, dict(pct_start=1.5), ValueError, "pct_start"),
    (fs.OneCycle, dict(anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (fs.OneCycle, dict(div_factor=0.0), ValueError, "div_factor"),
    (fs.OneCycle, dict(final_div_factor=-1.0), ValueError, "final_div_factor"),
    (fs.OneCycle, dict(three_phase="yes"), TypeError, "three_phase"),
    (fs.FunctionSchedule, dict(fn=0.1), TypeError, "callable"),
])
def test_bad_hyperparameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_params_repr_eq(schedule):
    params = schedule.get_params()
    assert list(params) == list(type(schedule)._param_names)
    assert type(schedule)(**params) == schedule
    assert eval(repr(schedule), vars(fs)) == schedule
    assert hash(type(schedule)(**params)) == hash(schedule)
    assert schedule != fs.FunctionSchedule(np.ones_like)


def test_set_params():
    s = fs.Cosine(lr=0.1, T_max=10)
    assert s.set_params(T_max=20) is s and s == fs.Cosine(lr=0.1, T_max=20)
    with pytest.raises(ValueError, match="T_max"):
        s.set_params(T_max=0)
    with pytest.raises(ValueError, match="Invalid parameter 'gamma'"):
        s.set_params(gamma=0.5)
    assert fs.Cosine(lr=0.1, T_max=10) != fs.Cosine(lr=0.1, T_max=11)
    assert fs.Cosine(lr=0.1, T_max=10) != fs.Polynomial(lr=0.1, total_iters=10)


def test_sklearn_clone(schedule):
    sklearn_base = pytest.importorskip("sklearn.base")
    clone = sklearn_base.clone(schedule, safe=False)
    assert clone == schedule and clone is not schedule
    assert sklearn_base.clone(fs.OneCycle(total_steps=np.int64(10)), safe=False).total_steps == 10
