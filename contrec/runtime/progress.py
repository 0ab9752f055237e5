"""Whether progress may be drawn: bars on a terminal, plain lines everywhere else."""

from __future__ import annotations

import sys

__all__ = ["interactive"]


def interactive() -> bool:
    """True when stderr is a terminal (a bar that redraws in place reads well only there)."""
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
