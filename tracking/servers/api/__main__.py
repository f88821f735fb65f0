"""``python -m tracking.servers.api [options]``: the same as ``trackflow server [options]``."""

import sys

from tracking.servers.api.cli import main

sys.exit(main())
