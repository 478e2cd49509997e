"""``python -m xdet``: the command line."""

import sys

from xdet.cli import main

sys.exit(main())
