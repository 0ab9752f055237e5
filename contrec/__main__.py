import os
import sys

from contrec.cli import main
from contrec.cli.launcher import under_launcher

code = main()
if under_launcher():
    # A training process of `contrec fit --distributed` leaves without the interpreter's teardown: after an
    # interrupt, the C++ threads of its process group can still be running then, and destroying them aborts
    # with "terminate called without an active exception" on the launcher's stderr. Everything it wrote is
    # already on disk (atomic files) and its one-line error, if any, is with the launcher.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
