"""python -m parago ... (the same as the parago command)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
