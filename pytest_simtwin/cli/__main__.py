"""``python -m pytest_simtwin.cli``: the same as the ``simtwin`` command."""

import sys

from pytest_simtwin.cli import main

sys.exit(main())
