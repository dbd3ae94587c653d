"""``python -m fastopt demo`` runs and tells the optimizers apart."""

import io
import subprocess
import sys

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
