"""`npy:DIR`: a training set larger than memory, as uint8 .npy files read in chunks.

DIR holds x_train.npy (uint8, (N, D) or (N, H, W)) and x_test.npy, and optionally y_train.npy and
y_test.npy. The test split is loaded; the training rows stay in the file and are streamed. The
validation split is every m-th training row (m = round(1 / val_fraction)), at most MAX_VAL rows,
so it is spread over the file and does not grow with it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .arrays import read_header, read_npy

MAX_VAL = 10_000


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Shape, dtype, Fortran order and data offset of an .npy file, without reading its data."""
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype = read_header(f)
            return shape, dtype, fortran, f.tell()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None


class NpyRows:
    """The training rows of a uint8 .npy file (validation rows left out), read on demand."""

    def __init__(self, path: Path, val_every: int, val_rows: int):
        shape, dtype, fortran, offset = _header(path)
        if dtype != np.uint8 or fortran or len(shape) not in (2, 3) or 0 in shape:
            raise DataError(f"{path}: needs a non-empty C-ordered uint8 array of shape (N, D) or (N, H, W); "
                            f"found {dtype} {shape}{' in Fortran order' if fortran else ''}")
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

    def read_file_rows(self, start: int, stop: int) -> np.ndarray:
        """File rows [start, stop) as a (rows, D) uint8 array in fresh memory (not a memory map)."""
        stop = min(stop, self.file_rows)
        out = np.empty((max(0, stop - start), self.dim), dtype=np.uint8)
        with open(self.path, "rb") as f:
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


def load_npy(name: str, root: Path, val_fraction: float):
    """ImageData whose train split is streamed from root/x_train.npy."""
    from .images import ImageData, _check_values, _labels  # images imports this module

    if not root.is_dir():
        raise DataError(f"{name}: folder not found")
    val_every = round(1 / val_fraction) if val_fraction > 0 else 0
    probe = NpyRows(root / "x_train.npy", 0, 0)
    val_rows = min(MAX_VAL, probe.file_rows // val_every) if val_every else 0
    train = NpyRows(root / "x_train.npy", val_every, val_rows)
    if len(train) == 0:
        raise DataError(f"{name}: no training rows left after the validation split")
    val_idx = np.arange(val_rows) * val_every + val_every - 1 if val_rows else np.zeros(0, dtype=np.int64)
    x_val = train.read_val()
    x_test = read_npy(f"{name}: x_test.npy", root / "x_test.npy")
    if x_test.dtype != np.uint8 or x_test.shape[1:] != train.shape[1:] or len(x_test) == 0:
        raise DataError(f"{name}: x_test.npy must be uint8 of shape (N >= 1, {', '.join(map(str, train.shape[1:]))}), "
                        f"found {x_test.dtype} {x_test.shape}")
    _check_values(name, "test", x_test, 1 / 255)

    def labels(split: str, n: int) -> np.ndarray | None:
        p = root / f"y_{split}.npy"
        if not p.exists():
            return None
        y = read_npy(f"{name}: {p.name}", p, mmap=True)
        if y.dtype.kind not in "iu" or y.shape != (n,):
            raise DataError(f"{name}: {p.name} must hold {n} integer labels, found {y.dtype} {y.shape}")
        return y

    y_train = labels("train", train.file_rows)
    y_val = None if y_train is None else np.asarray(y_train[val_idx])
    shape = (train.dim,) if len(train.shape) == 2 else (1, *train.shape[1:])
    return ImageData(name=name, shape=shape, train=train, val=torch.from_numpy(x_val),
                     test=torch.from_numpy(np.ascontiguousarray(x_test.reshape(len(x_test), -1))),
                     y_train=None, y_val=_labels(y_val), y_test=_labels(labels("test", len(x_test))),
                     scale=1 / 255)
