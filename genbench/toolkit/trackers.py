"""What every tracker plugin (``--log NAME``) shares: its library checked before any training, and failures
that warn instead of stopping the run."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator

from genbench.contract import GenbenchError
from genbench.toolkit.text import warn


def check_library(tracker: str, package: str, load: Callable[[], object]) -> None:
    """``package`` is installed and ``load()`` (the tracker's import of it) works: a missing or broken install
    is a one-line error before training, with the command that mends it, not a failure in the first cell."""
    extra = f"'genbench[{tracker}]'"
    if importlib.util.find_spec(package) is None:
        raise GenbenchError(f"--log {tracker} needs the {package} package: pip install {extra}")
    try:
        load()
    except Exception as error:
        raise GenbenchError(
            f"--log {tracker}: the {package} package fails to import ({type(error).__name__}: {error}); "
            f"reinstall it: pip install --force-reinstall {extra}"
        ) from error


class TrackerFailures:
    """The cells whose logging failed in this process: their later curve points are not tried again.

    A tracker that cannot write (a full disk, a server that is down) warns and lets the run go on: every result
    is in the run folder either way, and a benchmark of hours is not lost to its tracker.
    """

    def __init__(self, tracker: str) -> None:
        self.tracker = tracker
        self.cells: set[str] = set()

    @contextlib.contextmanager
    def warned(self, cell_id: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            self.cells.add(cell_id)
            warn(f"--log {self.tracker} could not log cell {cell_id}: {type(error).__name__}: {error}")
