"""What a distribution of fastopt carries: one version, the licence, the typing marker, and an
sdist that holds the build's inputs and nothing else."""

import importlib.metadata
import importlib.resources
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import fastopt

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_installed_metadata():
    from fastopt._version import __version__

    assert fastopt.__version__ == __version__ == importlib.metadata.version("fastopt")


def test_the_version_is_written_once():
    # pyproject.toml declares it dynamic and reads it from fastopt/_version.py.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml beside the tests")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    provider = config["tool"]["scikit-build"]["metadata"]["version"]
    assert provider == {"provider": "scikit_build_core.metadata.regex",
                        "input": "fastopt/_version.py"}


def test_the_package_is_typed():
    assert importlib.resources.files("fastopt").joinpath("py.typed").is_file()


def test_the_licence_is_in_the_installed_metadata():
    files = importlib.metadata.distribution("fastopt").files or []
    licences = [f for f in files if f.name == "LICENSE" and ".dist-info" in str(f)]
    assert licences, [str(f) for f in files if ".dist-info" in str(f)]
    assert "BSD 3-Clause" in licences[0].read_text()


def test_the_sdist_holds_the_build_inputs_only(tmp_path):
    pytest.importorskip("scikit_build_core.build")
    if not all((ROOT / name).exists() for name in ("CMakeLists.txt", "csrc", "fastopt")):
        pytest.skip("not a source checkout")
    build = subprocess.run(
        [sys.executable, "-c", "import sys; from scikit_build_core.build import build_sdist; "
         "print(build_sdist(sys.argv[1]))", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    name = build.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        files = {m.name.split("/", 1)[1] for m in sdist.getmembers() if m.isfile()}
    top = {f.split("/", 1)[0] for f in files}
    assert top == {"CHANGELOG.md", "CMakeLists.txt", "LICENSE", "PKG-INFO", "README.md", "csrc",
                   "fastopt", "pyproject.toml"}
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "csrc").rglob("*") if p.is_file()}
    assert sources <= files
    assert {"fastopt/py.typed", "fastopt/_version.py", "fastopt/_core.pyi"} <= files
    assert not [f for f in files if f.endswith((".so", ".pyd", ".pyc"))]
