"""One process at a time in a folder: an exclusive, non-blocking flock on the folder itself.

The kernel drops the lock when its process dies, so a kill leaves no stale lock behind. The lock
belongs to the folder (its inode), not to its path: after taking it, the path is checked to still
name that folder, since an overwrite (claims.py) may swap another folder in between.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import FolderInUse
from .lock_owner import lock_owner


def lock(path: str | Path) -> int:
    """Take path's lock; returns the descriptor holding it (closing it releases the lock). Raises
    BlockingIOError while another process (or another descriptor of this one) holds it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise
        except OSError:  # a file system without locks: train unguarded
            pass
        now, held = os.stat(path), os.fstat(fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):  # swapped between the open and the lock
            raise BlockingIOError(f"{path} was replaced while it was being locked")
    except BaseException:
        os.close(fd)
        raise
    return fd


def busy(path: str | Path) -> FolderInUse:
    """The error for a folder another process holds the lock of, naming that process where Linux tells."""
    return FolderInUse(f"{path} is being trained by another process{lock_owner(path)}; wait for it, or stop it first")


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold path's lock for the with-block; FolderInUse (busy()) while another process holds it."""
    try:
        fd = lock(path)
    except BlockingIOError:
        raise busy(path) from None
    try:
        yield
    finally:
        os.close(fd)
