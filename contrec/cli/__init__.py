"""The `contrec` command line (`main`); see ``contrec --help``."""

from contrec.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
