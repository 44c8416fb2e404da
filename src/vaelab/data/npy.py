"""`npy:DIR`: a training set larger than memory, as uint8 .npy files read in chunks.

DIR holds x_train.npy (uint8, (N, D) or (N, H, W)) and x_test.npy, and optionally y_train.npy and
y_test.npy. The test split is loaded; the training rows stay in the file and are streamed. The
validation split is every m-th training row (m = round(1 / val_fraction)), at most MAX_VAL rows,
so it is spread over the file and does not grow with it.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .npfiles import read_header
from .regular_files import open_regular

MAX_VAL = 10_000


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Shape, dtype, Fortran order and data offset of an .npy file, without reading its data."""
    try:
        with open_regular(path) as f:  # a FIFO would block forever
            shape, fortran, dtype = read_header(f)
            return shape, dtype, fortran, f.tell()
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None


class NpyRows:
    """The training rows of a uint8 .npy file (validation rows left out), read on demand."""

    def __init__(self, path: Path, val_every: int, val_rows: int):
        shape, dtype, fortran, offset = _header(path)
        colour = len(shape) == 4 and shape[1] in (1, 3)  # streamed rows are stored as read: (N, C, H, W) only
        if dtype != np.uint8 or fortran or not (len(shape) in (2, 3) or colour) or 0 in shape:
            raise DataError(f"{path}: needs a non-empty C-ordered uint8 array of shape (N, D), (N, H, W) or "
                            f"(N, C, H, W) with C = 1 or 3; found {dtype} {shape}"
                            f"{' in Fortran order' if fortran else ''}")
        size = path.stat().st_size
        self.file_rows, self.dim = shape[0], math.prod(shape[1:])
        if size < offset + self.file_rows * self.dim:
            raise DataError(f"{path}: truncated ({size} bytes, header needs {offset + self.file_rows * self.dim})")
        self.path, self.shape, self.offset = path, shape, offset
        self.val_every, self.val_rows = val_every, val_rows  # row i is validation if i % m == m-1, i // m < rows

    def is_val(self, i: np.ndarray) -> np.ndarray:
        """Which of the file rows i are validation rows."""
        if self.val_every == 0:
            return np.zeros(len(i), dtype=bool)
        return (i % self.val_every == self.val_every - 1) & (i // self.val_every < self.val_rows)

    def __len__(self) -> int:
        return self.file_rows - self.val_rows

    def train_rows_before(self, x: int) -> int:
        """How many training rows lie among file rows [0, x) (validation row j is file row j*m + m-1)."""
        return x - (min(self.val_rows, x // self.val_every) if self.val_every else 0)

    def file_row_of(self, t: int) -> int:
        """The first file row x with t training rows before it: training rows [t, ...) start at or after x."""
        return bisect.bisect_left(range(self.file_rows + 1), t, key=self.train_rows_before)

    def read_file_rows(self, start: int, stop: int) -> np.ndarray:
        """File rows [start, stop) as a (rows, D) uint8 array in fresh memory (not a memory map)."""
        stop = min(stop, self.file_rows)
        out = np.empty((max(0, stop - start), self.dim), dtype=np.uint8)
        with open_regular(self.path) as f:
            f.seek(self.offset + start * self.dim)
            if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise DataError(f"{self.path}: file shrank while reading")
        return out

    def read_val(self, chunk_rows: int = 16384) -> np.ndarray:
        """The validation rows, (val_rows, D), read a chunk at a time."""
        if self.val_rows == 0:
            return np.zeros((0, self.dim), dtype=np.uint8)
        span = self.val_rows * self.val_every  # validation rows all lie in [0, span)
        parts = []
        for start in range(0, span, chunk_rows):
            block = self.read_file_rows(start, min(start + chunk_rows, span))
            parts.append(block[self.is_val(np.arange(start, start + len(block)))])
        return np.concatenate(parts)

    def read(self, start: int, stop: int) -> np.ndarray:
        """The training rows among file rows [start, stop)."""
        block = self.read_file_rows(start, stop)
        keep = ~self.is_val(np.arange(start, start + len(block)))
        return block if keep.all() else block[keep]
