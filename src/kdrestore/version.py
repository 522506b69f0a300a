"""The package version (one place; the root package and the writers of cards and reports read it)."""
__version__ = "0.1.0"
