"""`python -m lab`: the `lab` command, for when the console script is not on PATH."""

import sys

from lab.cli import main

sys.exit(main())
