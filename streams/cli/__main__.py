"""`python -m streams.cli`: the same as `pulse`."""

import sys

from streams.cli import main

sys.exit(main())
