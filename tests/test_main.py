"""``python -m fastopt demo`` runs and tells the optimizers apart."""

import io
import subprocess
import sys

import numpy as np
import pytest

from fastopt.__main__ import DEMO_OPTIMIZERS, quadratic_demo


def test_demo_reports_every_optimizer_and_momentum_beats_plain_descent():
    out = io.StringIO()
    results = quadratic_demo(steps=300, dim=20, backend="cpp", out=out)
    assert set(results) == set(DEMO_OPTIMIZERS)
    assert results["momentum"][0] < results["gd"][0] * 1e-6
    assert results["nesterov"][1] is not None
    assert all(name in out.getvalue() for name in DEMO_OPTIMIZERS)


def test_module_runs_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastopt", "demo", "--steps", "20",
                           "--dim", "5"],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "backend cpp" in done.stdout and "adam" in done.stdout


def test_bad_arguments_exit_with_code_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastopt", "demo", "--steps", "0"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_missing_matplotlib_gives_a_clear_message(monkeypatch, tmp_path, capsys):
    from fastopt import plot
    from fastopt.__main__ import main

    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib now fails
    assert main(["schedules", "--steps", "10", "--out", str(tmp_path)]) == 0
    assert "pip install 'fastopt[plot]'" in capsys.readouterr().out
    assert not (tmp_path / "fastopt-schedules.png").exists()
    with pytest.raises(ImportError, match=r"pip install 'fastopt\[plot\]'"):
        plot.schedules()


# fastopt compare --data: what a table file turns into, and what it refuses.

def write_csv(path, header, rows, delimiter=","):
    path.write_text("\n".join(delimiter.join(map(str, row)) for row in [header, *rows]) + "\n")
    return str(path)


@pytest.fixture
def churn_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    labels = np.where(X[:, 0] + rng.logistic(size=60) > 0, "churn", "stay")
    return [[f"{a:.6f}", f"{b:.6f}", label] for (a, b), label in zip(X, labels)]


def error_of(capsys, argv):
    from fastopt.__main__ import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastopt: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("missing", ["", "NA", "nan"])
def test_a_missing_target_label_is_an_error_not_a_class(tmp_path, capsys, churn_rows, missing):
    churn_rows[4][2] = missing
    churn_rows[9][2] = missing
    path = write_csv(tmp_path / "churn.csv", ["a", "b", "churn"], churn_rows)
    err = error_of(capsys, ["--data", path, "--target", "churn", "--epochs", "1"])
    assert "'churn' has 2 missing values in 60 rows" in err and "line 6" in err


def test_a_missing_parquet_label_is_an_error(tmp_path, capsys, churn_rows):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(churn_rows, columns=["a", "b", "churn"])
    frame.loc[3, "churn"] = None
    frame.to_parquet(tmp_path / "churn.parquet")
    err = error_of(capsys, ["--data", str(tmp_path / "churn.parquet"), "--target", "churn"])
    assert "'churn' has 1 missing value in 60 rows" in err and "row index 3" in err


def test_a_numeric_target_with_a_gap_says_missing_not_text(tmp_path, capsys):
    rows = [[i, 0.5 * i + 0.01 * i * i] for i in range(40)]
    rows[7][1] = ""
    path = write_csv(tmp_path / "price.csv", ["x", "price"], rows)
    for model in ([], ["--model", "softmax"]):
        err = error_of(capsys, ["--data", path, "--target", "price", *model])
        assert "'price' has 1 missing value" in err and "line 9" in err


def test_labels_that_look_continuous_need_softmax_explicitly(tmp_path, capsys):
    from fastopt.__main__ import load_data

    rows = [[i % 7, f"id{i}"] for i in range(40)]
    path = write_csv(tmp_path / "ids.csv", ["x", "name"], rows)
    err = error_of(capsys, ["--data", path, "--target", "name"])
    assert "40 different values in 40 rows" in err and "--model softmax" in err
    rows = [[i, 0.37 * i] for i in range(40)]
    path = write_csv(tmp_path / "price.csv", ["x", "price"], rows)
    assert load_data(path, "price", None)[2] == "linear"
    X, y, model, _ = load_data(path, "price", "softmax")  # asked for: trained, with a note
    assert model == "softmax" and len(np.unique(y)) == 40
    assert "softmax with 40 classes for 40 rows" in capsys.readouterr().err
    err = error_of(capsys, ["--data", path, "--target", "price", "--model", "logistic"])
    assert "exactly 2 classes, got 40" in err


def test_text_labels_are_classes(tmp_path, churn_rows):
    from fastopt.__main__ import load_data

    path = write_csv(tmp_path / "churn.csv", ["a", "b", "churn"], churn_rows)
    X, y, model, names = load_data(path, "churn", None)
    assert model == "logistic" and set(y) == {"churn", "stay"} and names == ["a", "b"]
    for row, label in zip(churn_rows, "abcdefghijklmnopqrstuvwxyz" * 3):
        row[2] = label
    write_csv(tmp_path / "churn.csv", ["a", "b", "churn"], churn_rows)
    assert load_data(path, "churn", None)[2] == "softmax"  # 26 text classes in 60 rows


def test_text_feature_columns_are_one_hot_encoded(tmp_path, capsys):
    from fastopt.__main__ import load_data

    cities = ["Rome", "Berlin", "Paris", "Berlin"] * 10
    rows = [[i / 10, city, i % 3] for i, city in enumerate(cities)]
    path = write_csv(tmp_path / "city.csv", ["x", "city", "y"], rows)
    X, y, model, names = load_data(path, "y", "linear")
    assert names == ["x", "city=Berlin", "city=Paris", "city=Rome"]
    np.testing.assert_array_equal(X[:, 0], np.arange(40) / 10)
    for column, city in zip(X[:, 1:].T, ["Berlin", "Paris", "Rome"]):
        np.testing.assert_array_equal(column, [float(c == city) for c in cities])
    assert "'city' (3 values) one-hot encoded" in capsys.readouterr().err


@pytest.mark.parametrize("cells, message", [
    ({3: ""}, "feature column 'b' has 1 missing value in 40 rows (the first on line 5)"),
    ({3: "NA", 6: "null"}, "feature column 'b' has 2 missing values"),
    ({3: "inf"}, "feature column 'b' has 1 infinite value (the first on line 5)"),
    ({3: "oops"}, "feature column 'b' holds numbers and text: 'oops' on line 5"),
    ({i: f"user{i}" for i in range(40)}, "feature column 'b' is text with 40 different values"),
])
def test_feature_column_errors_tell_missing_from_not_numeric(tmp_path, capsys, cells, message):
    rows = [[i / 10, i * 0.3 % 1, i % 2] for i in range(40)]
    for row, cell in cells.items():
        rows[row][1] = cell
    path = write_csv(tmp_path / "data.csv", ["a", "b", "y"], rows)
    assert message in error_of(capsys, ["--data", path, "--target", "y"])


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_csv_delimiter_is_sniffed(tmp_path, delimiter):
    from fastopt.__main__ import load_data

    rows = [[i / 10, f"{i * 0.3 % 1:.3f}", "yes" if i % 3 else "no"] for i in range(30)]
    comma = load_data(write_csv(tmp_path / "a.csv", ["a", "b", "y"], rows), "y", None)
    other = load_data(write_csv(tmp_path / "b.csv", ["a", "b", "y"], rows, delimiter), "y", None)
    np.testing.assert_array_equal(other[0], comma[0])
    np.testing.assert_array_equal(other[1], comma[1])
    assert other[2:] == comma[2:] == ("logistic", ["a", "b"])


def test_decimal_commas_are_named(tmp_path, capsys):
    rows = [[f"{i / 10:.1f}".replace(".", ","), i % 2] for i in range(30)]
    path = write_csv(tmp_path / "eu.csv", ["a", "y"], rows, ";")
    err = error_of(capsys, ["--data", path, "--target", "y"])
    assert "'a' holds numbers written with a decimal comma (e.g. '0,0')" in err


def test_a_mistyped_command_lists_the_commands(capsys):
    from fastopt.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["shedules"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'shedules'" in err
    choices = err.split("choose from")[1]  # quoted or not, by Python version
    assert all(name in choices for name in COMMANDS), err


COMMANDS = ("compare", "demo", "lr-sweep", "paths", "schedules")


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"], ["paths", "--help"]])
def test_help_is_plain_text_and_lists_every_command(capsys, argv):
    from fastopt.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":data:" not in text
    if argv == ["--help"]:
        listed = text.split("commands:")[1]
        assert all(f"\n    {name} " in listed for name in COMMANDS), listed
