"""``python -m tracking.server [options]``: the same as ``trackflow server [options]``."""

import sys

from tracking.server.cli import main

sys.exit(main())
