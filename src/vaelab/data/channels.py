"""Colour channels of image arrays: which axis holds them, and a run's channels setting checked against the data.

Arrays of four dimensions are images with channels: (N, C, H, W) (PyTorch's layout, what vaelab stores) or
(N, H, W, C) (NumPy's and PIL's), with C = 1 (grey) or 3 (RGB). The channel axis is the one of size 1 or 3:
axis 1 means (N, C, H, W), axis 3 means (N, H, W, C); when both are (a 3-pixel-wide image) the layout is
ambiguous and refused. Three dimensions are one-channel (N, H, W); two are flat vectors (N, D).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

CHANNELS = (1, 3)  # grey, RGB


def to_nchw(name: str, key: str, a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) from a 4-D array in either layout; DataError when neither or both axes can hold channels."""
    first, last = a.shape[1] in CHANNELS, a.shape[3] in CHANNELS
    if first and last:
        raise DataError(f"{name}: {key} has shape {a.shape}: (N, C, H, W) or (N, H, W, C) cannot be told apart "
                        f"when both axis 1 and axis 3 have 1 or 3 entries; store images at least 4 pixels wide")
    if first:
        return a
    if last:
        return np.ascontiguousarray(a.transpose(0, 3, 1, 2))
    raise DataError(f"{name}: {key} has shape {a.shape}; expected four dimensions as (N, C, H, W) or (N, H, W, C) "
                    f"with C = 1 (grey) or 3 (RGB)")


def check(name: str, shape: tuple[int, ...], channels: int) -> None:
    """Refuse a channels setting (0: whatever the data has) that the data's examples of shape do not have."""
    if channels == 0:
        return
    if len(shape) != 3:
        raise DataError(f"{name}: holds flat vectors of {shape[0]} values, not images; channels = {channels} "
                        f"applies to images (leave it unset)")
    if shape[0] != channels:
        raise DataError(f"{name}: its images have {shape[0]} channel{'s' * (shape[0] != 1)}, not channels = "
                        f"{channels} (only folder:PATH converts images; give arrays of the channels asked for, "
                        f"or leave channels unset)")
