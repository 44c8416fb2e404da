"""Two folders swapped in one step, so a path always names one whole folder (claims.py's overwrite)."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from pathlib import Path

RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100



@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Swap two folders in one step (Linux's renameat2 with RENAME_EXCHANGE). Where the system or the file
    system lacks it, three renames: for a moment b is absent, and a process making a folder b in that
    moment makes the last rename fail (or, with b still empty, loses its folder to it)."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is not None:
        if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(b))
    aside = a.with_name(a.name + ".swap")
    os.rename(a, aside)
    os.rename(b, a)
    os.rename(aside, b)
