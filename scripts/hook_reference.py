"""The hook reference in docs/plugins.md, generated from the docstrings of genbench/hookspecs.py.

    python scripts/hook_reference.py --write    rewrite the section between the markers in docs/plugins.md
    python scripts/hook_reference.py --check    exit 1 if the section differs from what the docstrings say

Every function of genbench.contract.hookspecs that carries pluggy's genbench hookspec marker is listed, in file order,
with its signature, its options (firstresult, historic) and its docstring, so a new hook needs nothing here.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "plugins.md"
BEGIN = "<!-- hook reference: generated from genbench/hookspecs.py by `python scripts/hook_reference.py --write` -->"
END = "<!-- end of the hook reference -->"
COMMAND = "python scripts/hook_reference.py --write"


def hook_functions(module: ModuleType) -> list[tuple[str, object, dict[str, object]]]:
    """(name, function, hookspec options) of every hook, in the order of the source file."""
    found = []
    for name, function in vars(module).items():
        options = getattr(function, "genbench_spec", None)
        if name.startswith("genbench_") and isinstance(options, dict):
            found.append((name, function, options))
    return sorted(found, key=lambda item: item[1].__code__.co_firstlineno)  # type: ignore[attr-defined]


def hook_section(module: ModuleType) -> str:
    lines = [BEGIN, ""]
    for name, function, options in hook_functions(module):
        signature = inspect.signature(function)  # type: ignore[arg-type]
        flags = [flag for flag in ("firstresult", "historic") if options.get(flag)]
        lines.append(f"### `{name}{signature}`".replace("'", ""))
        lines.append("")
        if flags:
            lines += [
                f"*{', '.join(flags)}*: " + ("the first non-None answer wins." if "firstresult" in flags else ""),
                "",
            ]
        lines += [inspect.getdoc(function) or "(no docstring)", ""]
    lines.append(END)
    return "\n".join(lines)


def replaced(document: str, section: str) -> str:
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC} has no hook reference markers ({BEGIN!r} ... {END!r})")
    return document[:start] + section + document[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the section in docs/plugins.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/plugins.md is out of date")
    args = parser.parse_args(argv)
    from genbench.contract import hookspecs

    document = DOC.read_text(encoding="utf-8")
    expected = replaced(document, hook_section(hookspecs))
    if args.write:
        DOC.write_text(expected, encoding="utf-8")
        return 0
    if expected != document:
        print(f"{DOC} is out of date with genbench/hookspecs.py; run: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
