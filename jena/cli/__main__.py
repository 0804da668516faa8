"""``python -m jena.cli`` — the same as the ``jena`` command."""

import sys

from . import main

sys.exit(main())
