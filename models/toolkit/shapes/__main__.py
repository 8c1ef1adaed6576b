"""python -m toolkit.shapes cases|fixtures|validate (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
