"""Only regular files are read as data or weights: a FIFO blocks its reader forever, /dev/zero never ends,
and a folder or a socket is no file at all. Each is refused with one line saying what the path is.

The path is looked at (links followed) before it is opened, so a device is never even opened; it is then
opened without blocking and looked at again, so a file swapped for a FIFO in between cannot hang the reader.
It needs nothing but errors.py: data files, documents to encode (topics), word embeddings (models) and
weights files (runs) are all read through it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError

KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def what_is(mode: int) -> str:
    """'a named pipe (FIFO)', 'a character device', ...: what a non-regular file is, from its st_mode."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def _refuse(where: str, mode: int, error: type[Exception]) -> Exception:
    return error(f"{where}: {what_is(mode)}, not a regular file (only regular files are read)")


def check_regular(path: str | Path, where: str | None = None, error: type[Exception] = DataError) -> Path:
    """path, when it is a regular file or a link to one; else `error` naming `where` (default: the path)."""
    path, where = Path(path), where or str(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{where}: file not found") from None
    except OSError as e:
        raise error(f"{where}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise _refuse(where, mode, error)
    return path


def open_regular(path: str | Path, where: str | None = None, error: type[Exception] = DataError) -> BinaryIO:
    """path opened for binary reading, when it is a regular file (checked before and after opening)."""
    path = check_regular(path, where, error)
    where = where or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO swapped in since the check opens at once
    except OSError as e:
        raise error(f"{where}: cannot open ({e.strerror or e})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(where, mode, error)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
