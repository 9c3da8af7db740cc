"""``python -m pytest_simtwin.sim``: the same as the ``simtwin-sim`` command."""

import sys

from .cli import main

sys.exit(main())
