"""An npy:DIR dataset: the training split streamed from x_train.npy (npy.NpyRows), the rest in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .arrays import ImageData, _check_values, _labels, check_label_range
from .npfiles import read_npy
from .npy import MAX_VAL, NpyRows


def load_npy(name: str, root: Path, val_fraction: float):
    """ImageData whose train split is streamed from root/x_train.npy."""
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
        check_label_range(f"{name}: {p.name}", y)
        return y

    y_train = labels("train", train.file_rows)
    y_val = None if y_train is None else np.asarray(y_train[val_idx])
    shape = (train.dim,) if len(train.shape) == 2 else (1, *train.shape[1:]) if len(train.shape) == 3 \
        else tuple(train.shape[1:])  # (N, C, H, W): rows are already channel-major
    return ImageData(name=name, shape=shape, train=train, val=torch.from_numpy(x_val),
                     test=torch.from_numpy(np.ascontiguousarray(x_test.reshape(len(x_test), -1))),
                     y_train=None, y_val=_labels(y_val), y_test=_labels(labels("test", len(x_test))),
                     scale=1 / 255)
