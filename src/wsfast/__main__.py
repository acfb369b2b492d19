"""``python -m wsfast``: see :mod:`wsfast.cli`."""

import sys

from .cli import main

sys.exit(main())
