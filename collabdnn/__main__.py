"""``python -m collabdnn`` is the ``collabdnn`` console script."""

import sys

from collabdnn.cli import main

sys.exit(main())
