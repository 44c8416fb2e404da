"""ImageData, the dataset every image loader returns, and the checks they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .npy import NpyRows


@dataclass(frozen=True)
class ImageData:
    """A dataset: flattened splits, per-example shape, and the factor that maps stored values to [0, 1]."""

    name: str
    shape: tuple[int, ...]
    train: torch.Tensor | NpyRows  # NpyRows: streamed from a file, never loaded whole
    val: torch.Tensor
    test: torch.Tensor
    y_train: torch.Tensor | None
    y_val: torch.Tensor | None
    y_test: torch.Tensor | None
    scale: float
    # ground-truth factors of variation (data/shapes.py): each split's (N, F) grid indices, and the factors' names
    factors_train: torch.Tensor | None = None
    factors_val: torch.Tensor | None = None
    factors_test: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        """Number of values per example."""
        return int(np.prod(self.shape))


# labels are class numbers: they colour plots, index class names and per-class counts, and travel to the
# explorer as int32. 2^20 classes is far beyond any labelled data set and keeps a per-class table small.
MAX_LABEL = 2**20


def check_label_range(where: str, y: np.ndarray) -> None:
    """Integer labels in [0, MAX_LABEL); DataError naming the first one outside (2^40, -7) otherwise."""
    if y.size and (int(y.min()) < 0 or int(y.max()) >= MAX_LABEL):
        bad = int(y[(y < 0) | (y >= MAX_LABEL)][0])
        raise DataError(f"{where} holds the label {bad}; labels are class numbers from 0 to {MAX_LABEL - 1}")


def _labels(y: np.ndarray | None) -> torch.Tensor | None:
    # a copy: labels may be a read-only memory map of y_*.npy, which torch would warn about on stderr
    return None if y is None else torch.from_numpy(np.array(y, dtype=np.int64))


def _check_values(name: str, split: str, x: np.ndarray, scale: float) -> None:
    """No NaN/inf, and stored value * scale within [0, 1]."""
    if x.size == 0:
        return
    if x.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise DataError(f"{name}: {split} has {bad} NaN/inf values")
    lo, hi = float(x.min()) * scale, float(x.max()) * scale
    if lo < 0 or hi > 1:
        raise DataError(f"{name}: {split} values must lie in [0, 1] after scaling "
                        f"(found min {lo:g}, max {hi:g})")


def check_sizes(name: str, shape: tuple[int, ...], n_train: int, n_test: int) -> None:
    """At least one value per example, one training and one test example (else nothing can be scored)."""
    if int(np.prod(shape)) == 0:
        raise DataError(f"{name}: examples of shape {tuple(shape)} hold no values")
    if n_train == 0 or n_test == 0:
        raise DataError(f"{name}: needs at least one training and one test example, found {n_train} and {n_test}")
