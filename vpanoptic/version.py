"""The package version (one place; `vpanoptic.__version__` re-exports it)."""

__version__ = "0.1.0"
