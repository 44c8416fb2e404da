"""Arrays handed to the Python API as data (NumPy or torch): checked, named by keyword, kept in the run folder.

    vaelab.train(data=x, labels=y)   # x: (N, H, W) or (N, D), floats in [0, 1] (or uint8 0-255); y: (N,) ints

The run keeps them as RUN/data.npz and its config says data = "npz:<that file>", so `vaelab evaluate`,
the plots and the report find them later like any npz data set (a fixed 20% test hold-out, data/images.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..atomic import atomic_write
from ..config import schema as cfg
from ..data import ImageData, load_images
from ..data.arrays import check_label_range
from ..data.images import from_arrays
from ..errors import ConfigError
from .folder import RunFolder

PLACEHOLDER = "npz:(arrays)"  # the data value until the run folder holds the arrays


def _numpy(value: Any) -> np.ndarray:
    """A NumPy copy of a NumPy array or torch tensor (on any device)."""
    if hasattr(value, "detach"):  # a torch tensor: no import of torch needed to recognise it
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def is_array(value: Any) -> bool:
    """True for a NumPy array or a torch tensor (not a dataset name)."""
    return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "shape"))


def take(overrides: dict[str, Any], labels: Any = None) -> dict[str, np.ndarray] | None:
    """Pop array data (and labels) from train()'s keywords, checked; None when data names a dataset."""
    data = overrides.get("data")
    if not is_array(data):
        if labels is not None:
            raise ConfigError("labels go with array data (data=x, labels=y); a named dataset brings its own")
        return None
    x = _numpy(data)
    if x.ndim not in (2, 3) or len(x) == 0:
        raise ConfigError(f"data must be images shaped (N, H, W) or (N, D) with N >= 1, not {tuple(x.shape)}")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise ConfigError("data holds NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(f"data values must lie in [0, 1] (found {float(x.min()):g} to {float(x.max()):g})")
    elif x.dtype != np.uint8 and x.dtype.kind != "b":
        raise ConfigError(f"data must hold floats in [0, 1] or uint8 values 0-255, not {x.dtype}")
    arrays = {"x": x}
    if labels is not None:
        y = _numpy(labels)
        if y.shape != (len(x),) or y.dtype.kind not in "iu":
            raise ConfigError(f"labels must be {len(x)} integers, one per example of data, "
                              f"not {y.dtype} shaped {tuple(y.shape)}")
        check_label_range("labels", y)
        arrays["y"] = y.astype(np.int64)
    overrides["data"] = PLACEHOLDER
    return arrays


def load(arrays: dict[str, np.ndarray], c: cfg.Config) -> ImageData:
    """The data set of the arrays, split as a config's npz data would be."""
    if models.likelihood_for(c) == "multinomial":
        raise ConfigError("array data holds images; the multinomial likelihood (model nvdm) models word counts")
    return from_arrays("data", arrays, c.val_fraction, c.seed)


def keep(arrays: dict[str, np.ndarray], run: str | Path, c: cfg.Config) -> tuple[cfg.Config, ImageData]:
    """Write the arrays into the run folder; the config then names that file, and its data is read back."""
    path = RunFolder(run).data_arrays
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())
    c = c.replace(data=f"npz:{path.resolve()}")
    return c, load_images(c.data, val_fraction=c.val_fraction, image_size=c.image_size, split_seed=c.seed)
