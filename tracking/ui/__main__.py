"""`python -m tracking.ui [--host H] [--port P] [--backend-store-uri URI]`: run the UI."""

import sys

from tracking.ui.cli import main

sys.exit(main())
