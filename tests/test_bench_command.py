"""``python -m bench`` and ``python bench/threads.py`` run (smoke tests at the smallest size;
the numbers are not checked: speed is shown by the benchmarks themselves, not by tests)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_command_writes_the_table_and_json(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "W5,W6",
                           "--repeat", "2", "--json", str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "fastopt Adam step" in done.stdout and "default hyperparameters" in done.stdout
    report = json.loads(out.read_text())
    workloads = {row["workload"].split()[0] for row in report["rows"]}
    assert workloads == {"W5", "W6"}
    firsts = [row for row in report["rows"] if row["contender"].startswith("fastopt")]
    assert firsts and all(row["median_ms"] > 0 for row in firsts)
    bad = subprocess.run([sys.executable, "-m", "bench", "--only", "W4"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "W4" in bad.stderr


def test_time_to_optimum_workload(tmp_path):
    """T1: every contender minimises the same objective (the optimum's two independent solves
    agree), fastopt's defaults reach the target gap on every problem, a timed row reached it
    and one without a time did not."""
    pytest.importorskip("sklearn")
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "T1",
                           "--repeat", "1", "--json", str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    workloads = list(dict.fromkeys(row["workload"] for row in rows))
    assert len(workloads) >= 8 and all(name.startswith("T1 ") for name in workloads)
    assert any("sparse" in name for name in workloads)
    for name in workloads:
        mine = [row for row in rows if row["workload"] == name]
        assert [row["contender"] for row in mine[:2]] == [
            "fastopt default", "fastopt default n_jobs=2"]
        assert all(row["contender"].startswith("sklearn ") for row in mine[2:])
        values = list(mine[0]["optimum"].values())
        assert len(values) == 2 and max(values) - min(values) <= 1e-10 * min(values), mine[0]
        assert mine[0]["median_ms"] is not None, mine[0]["note"]  # the defaults' promise
        for row in mine:
            assert row["gap"] >= -1e-12
            if row["median_ms"] is None:
                assert row["gap"] > 1e-6 and "target not reached" in row["note"]
            else:
                assert row["gap"] <= 1e-6 and ("ratio" in row) == (row is not mine[0])


def test_cross_validation_workload(tmp_path):
    """CV1: fastopt's LogisticRegressionCV (1 and 2 threads) and scikit-learn's on the same
    folds, the same C and fold scores checked before the timing."""
    pytest.importorskip("sklearn")
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "CV1",
                           "--repeat", "1", "--json", str(out)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["contender"] for row in rows] == [
        "fastopt LogisticRegressionCV", "fastopt LogisticRegressionCV, 2 threads",
        "sklearn LogisticRegressionCV lbfgs"]
    assert all(row["same"] and row["score_gap"] <= 1e-4 for row in rows), rows
    assert len({row["C"] for row in rows}) == 1
    assert rows[0]["median_ms"] > 0 and "ratio" in rows[2] and "goal" in rows[2]


def test_threads_bench_runs_and_checks_identical_results(tmp_path):
    out = tmp_path / "threads.json"
    done = subprocess.run([sys.executable, "bench/threads.py", "--quick", "--repeat", "2",
                           "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "speed-up 2 threads / sequential, fit linear:" in done.stdout
    assert "bit-identical to the sequential fits" in done.stdout
    report = json.loads(out.read_text())
    assert report["identical"] and report["quick"]
    assert {row["mode"] for row in report["rows"]} == {"sequential", "2 threads"}


def test_the_installed_command_has_no_bench():
    # The benchmark lives in the source repository (python -m bench from a checkout); a
    # command that works only in a source tree is not installed.
    script = Path(sys.executable).parent / "fastopt"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "fastopt"]
    done = subprocess.run(command + ["bench"], capture_output=True, text=True, cwd=ROOT.parent,
                          timeout=120)
    assert done.returncode == 2 and "invalid choice: 'bench'" in done.stderr.replace('"', "'")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_rows_sums_the_rows_in_the_given_order(dtype, monkeypatch):
    """The shuffled-read floor of the benchmark reads every row it is given, whatever the
    prefetch distances (0: none; past the end of the order)."""
    from fastopt import _core
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1001, 13)).astype(dtype)
    order = _core.shuffled_order(len(X), 3, 0)
    for near, far in (("4", "49152"), ("0", "0"), ("64", "10000000")):
        monkeypatch.setenv("FASTOPT_PREFETCH_ROWS", near)
        monkeypatch.setenv("FASTOPT_PREFETCH_L2_BYTES", far)
        assert _core.read_rows(X, order) == pytest.approx(float(X.astype(np.float64).sum()),
                                                         rel=1e-12, abs=1e-9)
    assert _core.read_rows(X, order[:10]) == pytest.approx(
        float(X[order[:10]].astype(np.float64).sum()), rel=1e-12, abs=1e-9)
    with pytest.raises(ValueError, match="past the rows"):
        _core.read_rows(X[:5], order)
    with pytest.raises(TypeError, match="uint32"):
        _core.read_rows(X, order.astype(np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.read_rows(X[:, ::2], order)
