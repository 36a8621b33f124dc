"""`python -m sor`: the same as the `sor` console script."""

import sys

from sor.cli import main

sys.exit(main())
