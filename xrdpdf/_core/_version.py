"""The package version (one place; the installed metadata says the same)."""

__version__ = "0.1.0"
