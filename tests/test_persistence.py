"""fastopt.save / fastopt.load: estimators and optimizer states in .npz files read without
pickle, across processes; a resumed fit continues bit for bit; bad files fail clearly."""

import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastopt as fo

pytest.importorskip("sklearn")


def data(classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 5)) * [1, 10, 100, 0.1, 1] + 3
    score = (X - 3) @ [1.0, 0.1, 0.01, 10.0, -1.0]
    labels = np.array(["ant", "bee", "cow"])[:classes]
    return X, labels[np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))]


@pytest.mark.parametrize("make", [
    lambda: fo.LogisticRegression(optimizer=fo.Adam(lr=0.02, betas=(0.8, 0.99)),
                                  schedule=fo.WarmupCosine(warmup_steps=10), epochs=5,
                                  random_state=3, tol=None),
    lambda: fo.LogisticRegression(optimizer="nadam", penalty="elasticnet", alpha=1e-3,
                                  epochs=4, random_state=1, tol=None),
    lambda: fo.LinearRegression(optimizer="sgd", lr=0.01, schedule="cosine", epochs=3,
                                random_state=2, tol=None),
], ids=["adam-warmup-cosine", "nadam-3-classes", "linear-sgd"])
def test_a_saved_fit_resumes_bit_for_bit(tmp_path, make):
    est = make()
    X, labels = data(classes=3 if "nadam" in repr(est) else 2)
    y = labels if isinstance(est, fo.LogisticRegression) else X[:, 0] * 2 + 1
    est.fit(X, y)
    path = fo.save(est, tmp_path / "model")
    assert path.suffix == ".npz"
    loaded = fo.load(path)
    assert repr(loaded) == repr(est)
    np.testing.assert_array_equal(loaded.coef_, est.coef_)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.history_ == est.history_ and loaded.t_ == est.t_
    for model in (est, loaded):
        model.partial_fit(X, y)  # continues optimizer state, schedule and shuffle stream
    np.testing.assert_array_equal(loaded.coef_, est.coef_)
    np.testing.assert_array_equal(loaded.intercept_, est.intercept_)


def test_unfitted_newton_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, labels = data()
    fresh = fo.load(fo.save(fo.LinearRegression(epochs=7), tmp_path / "fresh.npz"))
    assert fresh.epochs == 7 and not hasattr(fresh, "coef_")
    frame = pd.DataFrame(X, columns=list("abcde"))
    newton = fo.LogisticRegression(optimizer="newton").fit(frame, labels)
    loaded = fo.load(fo.save(newton, tmp_path / "newton.npz"))
    assert list(loaded.feature_names_in_) == list("abcde")
    np.testing.assert_array_equal(loaded.predict_proba(frame), newton.predict_proba(frame))


def test_optimizer_state_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    params = rng.standard_normal(50)
    opt = fo.NAdam(lr=0.01)
    state = opt.init(params)
    for _ in range(5):
        opt.step(params, rng.standard_normal(50), state)
    loaded = fo.load(fo.save(state, tmp_path / "state.npz"))
    assert set(loaded) == set(state) and loaded["step"] == 5
    a, b = params.copy(), params.copy()
    grad = rng.standard_normal(50)
    opt.step(a, grad, state)
    opt.step(b, grad, loaded)
    np.testing.assert_array_equal(a, b)


def test_files_load_in_another_process_and_pickle_works(tmp_path):
    X, labels = data()
    est = fo.LogisticRegression(epochs=3, random_state=0, tol=None).fit(X, labels)
    path = fo.save(est, tmp_path / "model.npz")
    np.save(tmp_path / "X.npy", X)
    code = ("import sys, numpy as np, fastopt as fo; m = fo.load(sys.argv[1]); "
            "print(' '.join(m.predict(np.load(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "X.npy")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == list(est.predict(X))
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))


def test_what_cannot_be_saved_and_bad_files(tmp_path):
    X, labels = data()
    with pytest.raises(ValueError, match="Python function"):
        fo.save(fo.LinearRegression(schedule=lambda t: 0.01 + 0 * t), tmp_path / "f.npz")
    with pytest.raises(ValueError, match="Generator"):
        fo.save(fo.LinearRegression(random_state=np.random.default_rng(0)), tmp_path / "g")
    with pytest.raises(TypeError, match="estimator"):
        fo.save([1, 2, 3], tmp_path / "list.npz")
    path = fo.save(fo.LogisticRegression(epochs=2, tol=None).fit(X, labels), tmp_path / "m")
    content = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="damaged or truncated"):
        fo.load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable fastopt file"):
        fo.load(garbage)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ValueError, match="no 'meta'"):
        fo.load(plain)
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.namelist():
            data_bytes = source.read(item)
            if item == "meta.npy":
                meta = np.load(path, allow_pickle=False)["meta"]
                import io
                import json
                text = json.loads(str(meta))
                text["version"] = 99
                buffer = io.BytesIO()
                np.save(buffer, np.array(json.dumps(text)))
                data_bytes = buffer.getvalue()
            target.writestr(item, data_bytes)
    with pytest.raises(ValueError, match="version 99"):
        fo.load(newer)
    with pytest.raises(FileNotFoundError):
        fo.load(tmp_path / "missing.npz")


def _labels(seed=0):
    X, labels = data(classes=3, seed=seed)
    return X, labels


def test_the_same_name_both_ways_and_file_objects(tmp_path):
    import io
    X, labels = _labels()
    est = fo.LogisticRegression(epochs=2, random_state=0, tol=None).fit(X, labels)
    written = fo.save(est, tmp_path / "model")
    assert written == tmp_path / "model.npz"
    for name in (tmp_path / "model", str(tmp_path / "model"), tmp_path / "model.npz"):
        np.testing.assert_array_equal(fo.load(name).coef_, est.coef_)
    buffer = io.BytesIO()
    assert fo.save(est, buffer) is buffer
    buffer.seek(0)
    loaded = fo.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    state = fo.Adam().init(np.zeros(4))
    buffer = io.BytesIO()
    fo.save(state, buffer)
    buffer.seek(0)
    assert set(fo.load(buffer)) == set(state)
    with pytest.raises(FileNotFoundError):
        fo.load(tmp_path / "other")


@pytest.mark.parametrize("model,solver", [("softmax", "adam"), ("linear", "nadam"),
                                          ("logistic", "newton")])
def test_a_fit_result_round_trip(tmp_path, model, solver):
    pd = pytest.importorskip("pandas")
    X, labels = _labels()
    y = {"softmax": labels, "logistic": labels == "ant", "linear": X[:, 0] * 2 + 1}[model]
    frame = pd.DataFrame(X, columns=list("abcde"))
    result = fo.fit(frame, y, model=model, optimizer=solver, epochs=3, random_state=0,
                    standardize=True, tol=None)
    loaded = fo.load(fo.save(result, tmp_path / "result"))
    assert type(loaded) is fo.FitResult and loaded.model == result.model
    np.testing.assert_array_equal(loaded.coef_, result.coef_)
    np.testing.assert_array_equal(loaded.intercept_, result.intercept_)
    assert type(loaded.intercept_) is type(result.intercept_)
    np.testing.assert_array_equal(loaded.predict(X), result.predict(X))
    assert loaded.history == result.history
    assert (loaded.n_iter_, loaded.converged) == (result.n_iter_, result.converged)
    assert list(loaded.feature_names_in_) == list("abcde")
    if result.classes_ is not None:
        np.testing.assert_array_equal(loaded.classes_, result.classes_)
    if solver == "newton":
        assert loaded.state is None
    else:
        np.testing.assert_array_equal(loaded.state.params, result.state.params)
        assert loaded.state.optimizer.get_params() == result.state.optimizer.get_params()
        assert loaded.state.updates == result.state.updates
        for key, value in result.state.optimizer_state.items():
            np.testing.assert_array_equal(loaded.state.optimizer_state[key], value)


def _without(path, target, member):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.namelist():
            if item != member:
                out.writestr(item, source.read(item))


def test_a_missing_optimizer_moment_fails_at_load(tmp_path):
    X, labels = _labels()
    est = fo.LogisticRegression(optimizer="adam", epochs=2, random_state=0, tol=None)
    path = fo.save(est.fit(X, labels), tmp_path / "model")
    for member, name in (("optimizer/exp_avg.npy", "exp_avg"),
                         ("optimizer/exp_avg_sq.npy", "exp_avg_sq")):
        damaged = tmp_path / f"no-{name}.npz"
        _without(path, damaged, member)
        with pytest.raises(ValueError, match=f"'{name}'"):
            fo.load(damaged)
    result = fo.fit(X, labels, model="softmax", optimizer="adam", epochs=2, tol=None)
    path = fo.save(result, tmp_path / "result")
    _without(path, tmp_path / "bad-result.npz", "optimizer/exp_avg.npy")
    with pytest.raises(ValueError, match="'exp_avg'"):
        fo.load(tmp_path / "bad-result.npz")


def test_a_step_count_that_is_not_whole_is_refused_at_save(tmp_path):
    state = fo.Adam().init(np.zeros(3))
    state["step"] = 2.5
    with pytest.raises(ValueError, match=r"state\['step'\]"):
        fo.save(state, tmp_path / "state")
    assert not (tmp_path / "state.npz").exists()
