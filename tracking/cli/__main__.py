"""`python -m tracking.cli`: the `trackflow` command."""

import sys

from tracking.cli import main

sys.exit(main())
