# The one place the version is written: pyproject.toml reads it at build time (scikit-build-core's
# regex provider), fastopt.__version__ imports it, and the installed metadata carries it.
__version__ = "0.1.0"
