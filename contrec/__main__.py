import sys

from contrec.cli import main

sys.exit(main())
