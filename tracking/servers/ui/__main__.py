"""`python -m tracking.servers.ui [--host H] [--port P] [--backend-store-uri URI]`: run the UI."""

import sys

from tracking.servers.ui.cli import main

sys.exit(main())
