"""Old module names that earlier releases documented or that plugins imported, kept working with a warning.

Each old name is an alias of the module that holds its code now: importing it gives that very module (so its
names, and monkeypatching them, are the same) after one ``GenbenchDeprecationWarning`` naming the new place.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: Old module name -> where its code lives now.
MOVED_MODULES = {
    "genbench.types": "genbench.contract",
    "genbench.hookspecs": "genbench.contract.hookspecs",
    "genbench.executors": "genbench.contract.executors",
    "genbench.text": "genbench.toolkit.text",
    "genbench.validation": "genbench.toolkit.checks",
    "genbench.nn": "genbench.toolkit.nn",
    "genbench.training": "genbench.toolkit.training",
    "genbench.devices": "genbench.toolkit.devices",
    "genbench.stats": "genbench.toolkit.stats",
    "genbench.data": "genbench.toolkit.data",
    "genbench.trackers": "genbench.toolkit.trackers",
    "genbench.features": "genbench.toolkit.features",
    "genbench.plugins": "genbench.registry",
    "genbench.identity": "genbench.registry.code",
    "genbench.dispatch": "genbench.runner.dispatch",
    "genbench.workers": "genbench.runner.workers",
    "genbench.origins": "genbench.runner.external",
    "genbench.checkpoints": "genbench.runner.checkpoints",
    "genbench.reference_file": "genbench.toolkit.reference",
}


class GenbenchDeprecationWarning(DeprecationWarning):
    """A name plugins used has moved; the message says where to import it from now."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} has moved to {self.target}: import from there, or from genbench itself "
            "(the old name still works, and will be removed in a later release)",
            GenbenchDeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module ran when it was imported; there is nothing more to run."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(MOVED_MODULES[fullname]))


def install() -> None:
    """Put the finder first, once, so that an old name never finds a stale file of an earlier install."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
