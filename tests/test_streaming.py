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


def test_tol_none_is_taken_as_fit_takes_it(data):
    _, X, y = data
    common = dict(epochs=2, batch_size=100, shuffle=False, random_state=0, tol=None)
    streamed = fo.fit_stream((X, y), chunk_rows=500, **common)
    np.testing.assert_array_equal(params_of(streamed), params_of(fo.fit(X, y, **common)))
    with pytest.raises(ValueError, match="tol=None"):
        fo.fit_stream((X, y), tol=1e-4)


def chunks_of(X, y, rows=500, weights=None):
    return [(X[i:i + rows], y[i:i + rows]) + (() if weights is None else (weights[i:i + rows],))
            for i in range(0, len(X), rows)]


@pytest.mark.parametrize("model", ["linear", "softmax"])
def test_a_one_shot_generator_serves_a_one_pass_fit(data, model):
    _, X, y = data
    if model == "softmax":
        y = np.digitize(y, np.quantile(y, [0.3, 0.7]))
    chunks = chunks_of(X, y)
    common = dict(model=model, epochs=1, batch_size=100, random_state=0, lr=0.01,
                  schedule="invsqrt" if model == "linear" else None,
                  classes=None if model == "linear" else [0, 1, 2])
    once = fo.fit_stream((chunk for chunk in chunks), **common)
    listed = fo.fit_stream(chunks, **common)
    np.testing.assert_array_equal(params_of(once), params_of(listed))
    assert once.history["steps"] == listed.history["steps"]


def test_a_one_shot_generator_that_would_be_read_twice_is_refused_unread(data):
    _, X, y = data
    labels = (y > 0).astype(int)
    read = []

    def generator(targets=y):
        for chunk in chunks_of(X, targets):
            read.append(1)
            yield chunk

    for options, needs in [(dict(epochs=2), "epochs=2"),
                           (dict(epochs=1, standardize=True), "standardize"),
                           (dict(epochs=1, model="logistic"), "classes"),
                           (dict(epochs=1, schedule="cosine"), "T_max")]:
        targets = labels if options.get("model") == "logistic" else y
        with pytest.raises(ValueError, match=f"read only once.*{needs}"):
            fo.fit_stream(generator(targets), **options)
    assert not read  # nothing was consumed
    weighted = iter(chunks_of(X, y, weights=np.ones(len(y))))
    with pytest.raises(ValueError, match="sample weights from a one-shot iterator"):
        fo.fit_stream(weighted, epochs=1)


def test_an_exhausted_source_on_a_later_pass_is_a_clear_error(data):
    _, X, y = data
    shared = iter(chunks_of(X, y))  # the function returns the same iterator every time
    with pytest.raises(ValueError, match="no chunks in epoch 1.*fresh iterator"):
        fo.fit_stream(lambda: shared, epochs=2)


def test_csv_source(tmp_path, data):
    pd = pytest.importorskip("pandas")
    _, X, y = data
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    frame.insert(2, "target", y)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    back = pd.read_csv(path)
    common = dict(epochs=2, batch_size=100, shuffle=False, random_state=0)
    streamed = fo.fit_stream(path, target="target", chunk_rows=600, **common)
    in_memory = fo.fit(back.drop(columns="target").to_numpy(), back["target"].to_numpy(),
                       tol=None, **common)
    np.testing.assert_array_equal(params_of(streamed), params_of(in_memory))
    with pytest.raises(ValueError, match="'price' not in"):
        fo.fit_stream(path, target="price")
    with pytest.raises(ValueError, match="CSV source needs target="):
        fo.fit_stream(path)
    other = tmp_path / "train.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="neither a Parquet file nor a CSV file"):
        fo.fit_stream(other, target="target")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_value_that_is_not_a_number_names_its_column(tmp_path, data, kind):
    pd = pytest.importorskip("pandas")
    if kind == "parquet":
        pytest.importorskip("pyarrow")
    _, X, y = data
    frame = pd.DataFrame(X[:50], columns=[f"f{j}" for j in range(X.shape[1])])
    frame["colour"] = ["red"] * 50
    frame["target"] = y[:50]
    path = tmp_path / f"train.{kind}"
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path)
    with pytest.raises(ValueError, match="column 'colour' .* holds 'red', not a number"):
        fo.fit_stream(path, target="target")


def test_a_chunk_frame_with_a_non_numeric_column_names_it():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "colour": ["1", "2", "red", "4"]})
    with pytest.raises(ValueError, match="column 'colour' holds 'red'"):
        fo.fit_stream([(frame, np.arange(4.0))])
    with pytest.raises(ValueError, match="column 1 holds 'red'"):
        fo.fit_stream([(frame.to_numpy(), np.arange(4.0))])
