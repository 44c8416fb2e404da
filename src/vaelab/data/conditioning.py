"""A conditional run's data: each stored row carries its one-hot class label after the image's values.

Stored rows become [x, onehot(y) * v] (D + K values), v the stored value that scales to 1 (16 for the digits'
0..16 levels, 255 for 8-bit images), so rows(), the batches, binarization (1 and 0 stay 1 and 0) and the
evaluation's seeded inputs carry the label with no change; the model splits it off again
(models/conditional.py). ImageData.shape stays the image's: `dim` is D, the values the likelihood scores.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..errors import DataError
from .arrays import ImageData


def count(data: ImageData) -> int:
    """K: one more than the largest label of any split (labels are class numbers)."""
    ys = [y for y in (data.y_train, data.y_val, data.y_test) if y is not None and len(y)]
    return int(max(int(y.max()) for y in ys)) + 1 if ys else 0


def with_labels(data: ImageData, classes: int = 0) -> ImageData:
    """data with the one-hot label of width classes (0: count(data)) after each stored row; DataError for data
    without labels, streamed data, corpora, or labels a one-hot of that width cannot hold."""
    if not isinstance(data, ImageData) or getattr(data, "vocabulary", None) is not None:
        raise DataError(f"{data.name}: a conditional model needs labelled images; word counts are not")
    if not isinstance(data.train, torch.Tensor):
        raise DataError(f"{data.name}: its training split is streamed from disk; a conditional model needs it in "
                        f"memory (save it as npz:PATH)")
    splits = {"train": (data.train, data.y_train), "val": (data.val, data.y_val), "test": (data.test, data.y_test)}
    for name, (x, y) in splits.items():
        if len(x) and y is None:
            raise DataError(f"{data.name}: its {name} split has no labels; a conditional model needs a label for "
                            f"every example")
    k = classes or count(data)
    if k < 2:
        raise DataError(f"{data.name}: its labels hold {k} class; a conditional model needs at least 2")
    if count(data) > k:
        raise DataError(f"{data.name}: holds labels up to {count(data) - 1}, which a one-hot label of width {k} "
                        f"(classes = {k}) cannot hold")
    one = round(1 / data.scale) if data.scale != 1.0 else 1

    def pack(x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:  # an empty split
            return torch.zeros((0, x.shape[1] + k), dtype=x.dtype)
        hot = torch.nn.functional.one_hot(y, k).to(x.dtype) * one  # (N, K) in stored units
        return torch.cat([x, hot], 1)  # (N, D + K)

    return replace(data, **{name: pack(x, y) for name, (x, y) in splits.items()})
