"""A hook whose list holds a name instead of a spec."""

from __future__ import annotations

import genbench


@genbench.hookimpl
def genbench_models() -> object:
    return ["stringly"]
