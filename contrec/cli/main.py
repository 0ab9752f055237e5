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


def _interrupted(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt is somewhere in ``err``'s chain: libraries that clean up
    in ``finally`` blocks (zip writers, torch.distributed) can replace it with their own error."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _report_interrupt() -> int:
    if not under_launcher():
        print("contrec: interrupted", file=sys.stderr)
    return 130


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
            return _report_interrupt()
        except (OSError, MemoryError) as err:
            if _interrupted(err):
                return _report_interrupt()
            print(f"contrec: error: {err}", file=sys.stderr)
            return 1
        except Exception as err:
            if _interrupted(err):  # a library's cleanup error that replaced the KeyboardInterrupt
                return _report_interrupt()
            raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
