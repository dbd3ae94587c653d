"""fastopt.fit_stream: training over chunks read one at a time (memmap, lists, Parquet)."""

import numpy as np
import pytest

import fastopt as fo


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 3000, 6
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 4, d) + rng.uniform(-2, 2, d)
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    path = tmp_path / "X.dat"
    mapped = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    del mapped
    return np.memmap(path, dtype=np.float64, mode="r", shape=X.shape), X, y


def params_of(result):
    return np.r_[np.ravel(result.coef_), np.ravel(result.intercept_)]


def test_memmap_in_chunks_equals_the_in_memory_fit(data):
    mapped, X, y = data
    common = dict(optimizer="adam", lr=0.01, schedule="cosine", epochs=3, batch_size=50,
                  shuffle=False, random_state=0)
    streamed = fo.fit_stream((mapped, y), chunk_rows=500, **common)  # 6 chunks
    in_memory = fo.fit(X, y, tol=None, **common)
    np.testing.assert_array_equal(params_of(streamed), params_of(in_memory))
    np.testing.assert_allclose(streamed.history["loss"], in_memory.history["loss"], rtol=1e-12)
    assert streamed.history["steps"] == in_memory.history["steps"]
    # Standardisation statistics merged over the chunks: equal to rounding.
    streamed = fo.fit_stream((mapped, y), chunk_rows=700, standardize=True, **common)
    in_memory = fo.fit(X, y, tol=None, standardize=True, **common)
    np.testing.assert_allclose(params_of(streamed), params_of(in_memory), rtol=1e-10)


def test_shuffled_chunks_are_reproducible_and_learn(data):
    mapped, X, y = data
    common = dict(epochs=20, chunk_rows=512, random_state=3, standardize=True, lr=0.05)
    first, second = fo.fit_stream((mapped, y), **common), fo.fit_stream((mapped, y), **common)
    np.testing.assert_array_equal(params_of(first), params_of(second))
    exact = fo.fit(X, y, optimizer="newton", standardize=True)
    np.testing.assert_allclose(first.coef_, exact.coef_, rtol=0.05, atol=0.05)


def test_chunk_lists_functions_and_weights(data):
    _, X, y = data
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(X))
    chunks = [(X[i:i + 1000], y[i:i + 1000], w[i:i + 1000]) for i in range(0, 3000, 1000)]
    common = dict(epochs=2, batch_size=100, shuffle=False, random_state=0, lr=0.01)
    listed = fo.fit_stream(chunks, **common)
    generated = fo.fit_stream(lambda: iter(chunks), **common)
    np.testing.assert_array_equal(params_of(listed), params_of(generated))
    whole = fo.fit(X, y, sample_weight=w, tol=None, **common)
    np.testing.assert_allclose(params_of(listed), params_of(whole), rtol=1e-10)


def test_labels_are_collected_across_chunks():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((900, 4))
    labels = np.array(["cat", "dog", "eel"])[np.argmax(X[:, :3], axis=1)]
    order = np.argsort(labels, kind="stable")  # the first chunk holds one class only
    chunks = [(X[order][i:i + 300], labels[order][i:i + 300]) for i in range(0, 900, 300)]
    result = fo.fit_stream(chunks, model="softmax", epochs=30, lr=0.05, random_state=0)
    assert list(result.classes_) == ["cat", "dog", "eel"]
    assert (result.predict(X) == labels).mean() > 0.9


def test_parquet_source(tmp_path, data):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    _, X, y = data
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    frame["target"] = y
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, row_group_size=800)
    common = dict(epochs=2, batch_size=100, shuffle=False, random_state=0)
    streamed = fo.fit_stream(path, target="target", chunk_rows=600, **common)
    in_memory = fo.fit(X, y, tol=None, **common)
    np.testing.assert_array_equal(params_of(streamed), params_of(in_memory))
    with pytest.raises(ValueError, match="'price' not in"):
        fo.fit_stream(path, target="price")
    with pytest.raises(ValueError, match="target="):
        fo.fit_stream(path)


def test_bad_inputs(data):
    mapped, X, y = data
    with pytest.raises(ValueError, match="Newton"):
        fo.fit_stream((mapped, y), optimizer="newton")
    with pytest.raises(ValueError, match="features"):
        fo.fit_stream([(X[:10], y[:10]), (X[10:20, :3], y[10:20])])
    with pytest.raises(ValueError, match="rows"):
        fo.fit_stream((X, y[:-1]))
    with pytest.raises(TypeError, match="Parquet"):
        fo.fit_stream(42)
    with pytest.raises(ValueError, match="chunk_rows"):
        fo.fit_stream((X, y), chunk_rows=0)


def test_progress_bar(data, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    import fastopt.streaming as streaming

    bars = []
    real = streaming._progress

    def immediate(total, description, enabled):
        bar = real(total, description, enabled)
        if bar is not None:
            bar.delay = 0  # show at once, whatever the machine's speed
            bars.append(description)
        return bar

    monkeypatch.setattr(streaming, "_progress", immediate)
    fo.fit_stream((data[1], data[2]), epochs=2, chunk_rows=1000, progress=True)
    assert bars == ["fit_stream: statistics", "fit_stream: epoch 1/2", "fit_stream: epoch 2/2"]
    fo.fit_stream((data[1], data[2]), epochs=1, chunk_rows=1000, progress=False)
    assert "fit_stream" not in capsys.readouterr().err
