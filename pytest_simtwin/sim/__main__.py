"""``python -m pytest_simtwin.sim``: the same as the ``simtwin-sim`` command."""

import sys

from pytest_simtwin.sim.cli import main

sys.exit(main())
