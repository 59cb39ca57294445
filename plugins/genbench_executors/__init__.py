"""The built-in executors: ``serial`` (the default), ``local`` (worker processes) and ``ray`` (a Ray cluster).

Each module holds one executor; Ray is imported only when the ``ray`` executor runs.
"""

from __future__ import annotations

import genbench
from genbench import ExecutorSpec

from .local import LOCAL
from .ray_tasks import RAY
from .serial import SERIAL


@genbench.hookimpl
def genbench_executors() -> list[ExecutorSpec]:
    return [SERIAL, LOCAL, RAY]
