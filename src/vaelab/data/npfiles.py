""".npy and .npz arrays read safely: the header first, its declared size against the file, never pickle.

A header may declare any shape; numpy allocates it before reading a byte, so a 60-byte file that
claims 2**40 rows asks for 64 TiB. Every array is checked here against the bytes that hold it (and,
for a compressed npz member, the most that deflate can expand them) and against this machine's
memory before numpy reads it.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import DataError
from .regular_files import open_regular

DEFLATE_RATIO = 1032  # deflate expands one byte to at most ~1032 (RFC 1951: a 258-byte match in ~2 bits)


def memory_bytes() -> int:
    """This machine's physical memory (an array larger than it cannot be loaded)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 2**40


def read_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an open .npy stream positioned at its start (ValueError if bad)."""
    major, _ = np.lib.format.read_magic(f)
    if major not in (1, 2, 3):
        raise ValueError(f"unsupported .npy format version {major}")
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    return tuple(shape), fortran, np.dtype(dtype)


def check_size(where: str, shape: tuple[int, ...], dtype: np.dtype, available: int) -> int:
    """Bytes the header declares; a DataError when they are more than the file holds or memory can take."""
    if dtype.hasobject:
        raise DataError(f"{where}: holds Python objects ({dtype}); only numeric arrays are read (no pickle)")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > available:
        raise DataError(f"{where}: header declares {shape} {dtype} ({nbytes} bytes) but the file holds "
                        f"{available} bytes")
    if nbytes > memory_bytes():
        raise DataError(f"{where}: {shape} {dtype} needs {nbytes} bytes, more than this machine's memory")
    return nbytes


def read_npy(where: str, path: Path, mmap: bool = False) -> np.ndarray:
    """A whole .npy file (or a read-only memory map of it), its header checked first."""
    try:
        with open_regular(path, where) as f:  # a FIFO would block forever, /dev/zero never ends
            shape, _, dtype = read_header(f)
            check_size(where, shape, dtype, os.fstat(f.fileno()).st_size - f.tell())
            f.seek(0)
            if mmap:
                return np.load(path, mmap_mode="r", allow_pickle=False)
            return np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{where}: not a readable .npy file ({str(e).splitlines()[0] if str(e) else e!r})") from None


def read_npz(where: str, path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz archive by name, each header checked before it is read."""
    out = {}
    try:
        with open_regular(path, where) as raw, zipfile.ZipFile(raw) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[:-4]
                with z.open(info) as f:
                    shape, _, dtype = read_header(f)
                    room = info.file_size - f.tell()  # what the member says it expands to
                    if info.compress_type != zipfile.ZIP_STORED:
                        room = min(room, info.compress_size * DEFLATE_RATIO)
                    check_size(f"{where}: {name}", shape, dtype, room)
                    f.seek(0)
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            KeyError, OverflowError) as e:
        raise DataError(f"{where}: not a readable .npz archive ({str(e).splitlines()[0] if str(e) else e!r})") \
            from None
    return out
