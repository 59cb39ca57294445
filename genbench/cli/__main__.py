"""``python -m genbench.cli``: the ``genbench`` command (tests and scripts start it this way)."""

from __future__ import annotations

import sys

from genbench.cli import main

sys.exit(main())
