"""``python -m actors`` runs the ``threadline`` command line."""

import sys

from ._cli import main

sys.exit(main())
