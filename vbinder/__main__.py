"""``python -m vbinder``: the same as the ``vbinder`` command."""

import sys

from .cli import main

sys.exit(main())
