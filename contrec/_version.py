"""The package version, in one place: core modules read it without importing the package root."""

__version__ = "0.1.0"
