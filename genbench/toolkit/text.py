"""Untrusted text made safe for where it goes: a terminal, or a Markdown page.

Model names, errors, plugin descriptions and everything read back from a run folder were written by someone
else. On a terminal, an escape sequence in them could rewrite the screen or the title bar; in Markdown, a
``[link](javascript:...)`` or raw HTML would become live. HTML pages are escaped by jinja2 (genbench/report/html.py).
"""

from __future__ import annotations

import html
import re
import sys

#: C0 controls (but newline and tab, handled apart), DEL and the C1 controls (ESC's 8-bit twins, CSI among them).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: The Markdown characters that make text live rather than literal: brackets (links, images, reference links),
#: backticks (code spans), the backslash itself and the table's cell separator. ``<``, ``>`` and ``&`` (raw HTML,
#: autolinks, entities) become HTML entities. Emphasis characters are left alone: they change no meaning.
_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]|])")


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, one_line: bool = True) -> str:
    """``text`` with control characters shown as ``\\x1b``-style escapes; newlines too unless ``one_line`` is off."""
    text = _CONTROL.sub(_escape_control, str(text))
    text = text.replace("\r", "\\r").replace("\t", " ")
    return text.replace("\n", "\\n") if one_line else text


def markdown_safe(text: str) -> str:
    """``text`` as literal Markdown on one line: no link, image, HTML, code span or table break."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", terminal_safe(" ".join(str(text).splitlines())))
    return html.escape(text, quote=False)


def warn(message: str) -> None:
    """One warning line on stderr, as the CLI prints errors."""
    print(f"genbench: warning: {terminal_safe(message)}", file=sys.stderr)
