"""Code identity: a hash of the source files that compute a number, so that editing them invalidates it.

A plugin under development is usually installed in editable mode: its version stays the same while its code
changes. Cell ids and checkpoint keys therefore name the code itself: genbench's version and the SHA-256 of
the source files of the import package (or the single module) that provides each model, metric, data set and
feature extractor a cell uses. Editing a model plugin retrains its models; editing a metric plugin evaluates
its cells again but keeps the checkpoints; editing a data set plugin reruns everything on that data.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: Source files: what Python runs. Compiled caches, data files and documentation do not change a number.
SOURCE_PATTERN = "*.py"


def plugin_source_location(plugin: object) -> Path | None:
    """The folder of the regular package that holds ``plugin`` (a module, a class, an instance), or its one file.

    The outermost regular package is taken, so that editing any module of a plugin package counts, whichever
    of its modules the entry point names. None when the code has no file (a built-in or a REPL object).
    """
    module_name = plugin.__name__ if isinstance(plugin, ModuleType) else getattr(plugin, "__module__", None)
    if not isinstance(module_name, str):
        return None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:depth]))
        file = getattr(module, "__file__", None)
        if file is None:
            continue  # a namespace package: too wide to hash; look one level deeper
        path = Path(file).resolve()
        return path.parent if path.name == "__init__.py" else path
    return None


def source_hash(location: Path | None) -> str | None:
    """SHA-256 (16 hex digits) of the source files at ``location``, a package folder or one module file."""
    if location is None:
        return None
    return _source_hash(str(location))


@functools.cache
def _source_hash(location: str) -> str | None:
    """Cached per process: a plugin's code cannot change under a running process (it is imported already)."""
    root = Path(location)
    if root.is_dir():
        files = sorted((path.relative_to(root).as_posix(), path) for path in root.rglob(SOURCE_PATTERN))
    elif root.is_file():
        files = [(root.name, root)]
    else:
        return None
    digest = hashlib.sha256()
    for relative, path in files:
        content = path.read_bytes()
        # The name and the length delimit each file, so that moving code between files changes the hash too.
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def genbench_version() -> str:
    import genbench  # imported late: this module is imported while the genbench package initializes

    return str(genbench.__version__)


def describe_plugin(distribution: str | None, version: str | None, source: str | None) -> dict[str, Any]:
    """What identifies a plugin's code in a key: its distribution and version (they cover code that is not
    Python source, such as a compiled extension) and its source hash. Not its registered name, a mere label."""
    return {"distribution": distribution, "version": version, "source": source}
