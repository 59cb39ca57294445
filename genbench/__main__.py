"""``python -m genbench``: the ``genbench`` command, for an environment whose scripts folder is not on PATH."""

from __future__ import annotations

import sys

from genbench.cli import main

sys.exit(main())
