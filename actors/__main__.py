"""``python -m actors`` runs the ``threadline`` command line."""

import sys

from .tools import main

sys.exit(main())
