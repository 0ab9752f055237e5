"""``contrec fit --distributed``: start the training processes, and speak for them with one error line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from contrec.errors import ContrecError

__all__ = ["ERRORS_ENV", "under_launcher", "launch", "report_error"]

log = logging.getLogger("contrec")
ERRORS_ENV = "CONTREC_LAUNCH_ERRORS"


def under_launcher() -> bool:
    """Whether this is one of the processes ``contrec fit --distributed`` started (its launcher speaks for it)."""
    return bool(os.environ.get(ERRORS_ENV))


def launch(args: argparse.Namespace, nproc: int) -> int:
    """Start ``nproc`` copies of this command under PyTorch's elastic launcher (what torchrun runs)."""
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"contrec-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    log.info("starting %d training processes (torch.distributed, gloo)", nproc)
    with tempfile.TemporaryDirectory(prefix="contrec-errors-") as errors:
        os.environ[ERRORS_ENV] = errors  # the processes leave their one-line errors here, for one report below
        logging.disable(logging.ERROR)  # the launcher's own multi-line failure log
        try:
            elastic_launch(config, sys.executable)("-m", "contrec", *args.argv)
        except ChildFailedError as err:
            for rank, failure in sorted(err.failures.items()):
                message = Path(errors, str(rank))
                if message.is_file():
                    raise ContrecError(message.read_text(encoding="utf-8")) from None
            rank, failure = min(err.failures.items())
            raise ContrecError(f"training process {rank} failed (exit code {failure.exitcode})") from None
        except SignalException:  # Ctrl-C or a SIGTERM: the launcher has stopped the processes
            raise KeyboardInterrupt from None
        finally:
            logging.disable(logging.NOTSET)
            del os.environ[ERRORS_ENV]
    return 0


def report_error(message: str) -> None:
    """One error line on stderr; a training process started by ``--distributed`` leaves it for the launcher,
    which reports the first one (every process meets the same error, and one line is enough)."""
    rank = os.environ.get("RANK")
    if under_launcher() and rank is not None and Path(os.environ[ERRORS_ENV]).is_dir():
        Path(os.environ[ERRORS_ENV], rank).write_text(message, encoding="utf-8")
        return
    print(f"contrec: error: {message}", file=sys.stderr)
