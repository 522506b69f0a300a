"""``python -m kdrestore ...``: the command line without an installed console script."""
import sys

from .cli import main

if __name__ == "__main__":  # not when a worker process of `bench --jobs N` re-imports the main module
    sys.exit(main())
