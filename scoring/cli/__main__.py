"""`python -m scoring.cli` is the `egomask` command."""

import sys

from . import main

if __name__ == "__main__":  # importing this module (pkgutil.walk_packages does) must not run a command
    sys.exit(main())
