"""Text bound for a terminal: control characters from data are shown as escapes, never obeyed.

A vocabulary word, a label, a run folder's name or a path may hold escape sequences that a terminal
would execute (`\\x1b]0;TITLE\\x07` retitles the window, `\\x1b[2J` clears the screen, `\\r` and cursor
moves overwrite what was printed, bidirectional overrides reorder it). Everything vaelab prints goes
through printable(): the CLI's say() on stdout, and the log handler, warnings and error lines on stderr.
"""

from __future__ import annotations

import os
import re
import sys

# C0 and C1 controls and DEL; the Unicode line and paragraph separators; the bidirectional embeddings,
# overrides and isolates (they reorder the characters shown); lone surrogates (bytes of a file name that
# are not UTF-8, which a UTF-8 stream cannot even encode)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, keep_lines: bool = False) -> str:
    """str(text) with every control character written as \\xNN or \\uNNNN; keep_lines keeps "\\n" as a line break.

    keep_lines is for vaelab's own multi-line output; a data string (one word, one name) keeps nothing.
    """
    s = str(text)
    if not keep_lines:
        return _CONTROL.sub(_escape, s)
    return "\n".join(_CONTROL.sub(_escape, line) for line in s.split("\n"))


def say(text: object = "", file=None, end: str = "\n") -> None:
    """print() for the CLI: one or more lines of vaelab's output, control characters escaped."""
    print(printable(text, keep_lines=True), file=file or sys.stdout, end=end)


def first_process(node: bool = False) -> bool:
    """Under torchrun, whether this is process 0 (RANK 0), which alone prints results; node=True: the first
    process of its node (LOCAL_RANK 0), which prints an error line, so that each node's output shows it once.
    True outside torchrun. Read from torchrun's environment, without importing torch."""
    value = os.environ.get("LOCAL_RANK" if node else "RANK", "0")
    return not value.isdigit() or int(value) == 0
