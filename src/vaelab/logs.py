"""Logging and progress bars: the library logs to the `vaelab` logger and is silent until the CLI (or the
user) configures it; progress bars draw only on a terminal.

    import logging; logging.basicConfig(level=logging.INFO)   # a script that wants the epoch lines
    vaelab.train(data="digits", epochs=10)

`vaelab train ... > log 2>&1` therefore leaves plain lines, one per logged epoch, and no carriage
returns: tqdm redraws its bar with '\r', so a bar whose stream is not a terminal is never drawn.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .terminal import printable

LOGGER = logging.getLogger("vaelab")
LOGGER.addHandler(logging.NullHandler())  # a library stays quiet unless its user configures logging
LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, default, -v


def info(message: str) -> None:
    """The library's default `log` callable: one INFO line on the vaelab logger."""
    LOGGER.info(message)


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a line is logged (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; sys.stderr wins
        pass

    def format(self, record: logging.LogRecord) -> str:
        """The line as formatted, control characters from data (a run name, a path) escaped (terminal.py)."""
        return printable(super().format(record), keep_lines=True)


def configure_logging(verbosity: int = 0) -> None:
    """What the CLI calls once: vaelab's lines on stderr, bare; verbosity -1 (-q) warnings only, 1+ (-v) debug."""
    level = LEVELS[max(-1, min(1, verbosity))]
    for h in [h for h in LOGGER.handlers if isinstance(h, _Stderr)]:
        LOGGER.removeHandler(h)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s" if level > logging.DEBUG else "%(name)s: %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False  # the CLI's lines are printed once, whatever the root logger does


def on_terminal() -> bool:
    """Whether stderr, where tqdm draws, is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_bar(progress: bool, **kw: Any):
    """A tqdm bar that is drawn only when asked for and stderr is a terminal (else a silent counter)."""
    from tqdm.auto import tqdm

    return tqdm(disable=not (progress and on_terminal()), dynamic_ncols=True, **kw)
