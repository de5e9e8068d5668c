"""``python -m diffflux.experiments CONFIG [--out DIR] [--quiet]`` (the ``diffflux sensitivity`` command)."""

import sys

from diffflux.experiments.cli import run

sys.exit(run())
