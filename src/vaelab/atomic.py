"""Atomic file writes: a temp file in the same folder, fsync, rename; a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TMP_SUFFIX = ".tmp"  # a temporary is named .NAME.XXXXXXXX.tmp, beside NAME
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write bytes to path via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None:  # write() and fsync() name no file (a full disk): say which file was refused
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temporaries(folder: str | Path, name: str = "*") -> list[Path]:
    """The temporaries atomic_write left in folder (for files called name) when killed mid-write."""
    folder = Path(folder)
    return sorted(folder.glob(f".{name}.*{TMP_SUFFIX}")) if folder.is_dir() else []


def remove_temporaries(folder: str | Path, name: str = "*", older_than: float = 0.0) -> int:
    """Delete those temporaries last touched over older_than seconds ago (spare a live writer's); returns how many."""
    removed = 0
    for tmp in temporaries(folder, name):
        try:
            if time.time() - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            pass
    return removed
