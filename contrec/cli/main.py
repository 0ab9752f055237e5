"""The `contrec` command: fit | recommend | evaluate | split | datasets | demo | compare.

A thin face over the Python API. Known errors become one line on stderr and exit code 1
(2 for a malformed command line); output files are written atomically, so a failed run
never leaves a partial file.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any, Sequence

from contrec.cli.launcher import report_error, under_launcher
from contrec.cli.parser import build_parser
from contrec.errors import ContrecError

__all__ = ["main", "build_parser"]

log = logging.getLogger("contrec")


def _one_line_warnings(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                       line: Any = None) -> None:
    print(f"contrec: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("contrec: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warnings
        try:
            return int(args.func(args))
        except ContrecError as err:
            report_error(err.cli_message)
            return 1
        except KeyboardInterrupt:
            if not under_launcher():
                print("contrec: interrupted", file=sys.stderr)
            return 130
        except (OSError, MemoryError) as err:
            print(f"contrec: error: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
