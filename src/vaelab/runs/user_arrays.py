"""Arrays handed to the Python API as data (NumPy or torch): checked, named by keyword, kept in the run folder.

    vaelab.train(data=x, labels=y)   # x: (N, D), (N, H, W) or (N, 1, H, W) in [0, 1] (or uint8 0-255); y: (N,) ints
    vaelab.train(data=dataset)       # a torch Dataset (anything with __len__ and __getitem__) yielding x or (x, y)
    vaelab.train(data=(train, test)) # two of the above: the test split as given, not a 20% hold-out
    vaelab.train(data=(x, y))        # images and their labels (y one-dimensional: no test split has that shape)

With conditional = true the labels are packed after each row as the named datasets' are (data/conditioning.py);
RUN/data.npz keeps them beside the images, so evaluation and loading read the same labels.

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
from ..data import ImageData, conditioning, load_images
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


def is_dataset(value: Any) -> bool:
    """True for a map-style dataset (torch.utils.data.Dataset or any object with __len__ and __getitem__)."""
    return not isinstance(value, (str, bytes, tuple, list, dict)) and not is_array(value) and \
        hasattr(value, "__getitem__") and hasattr(value, "__len__")


def is_data(value: Any) -> bool:
    """True for data the API takes in memory: an array, a Dataset, or a (train, test) pair of them."""
    if isinstance(value, tuple):
        return len(value) == 2 and all(is_array(v) or is_dataset(v) for v in value)
    return is_array(value) or is_dataset(value)


def _from_dataset(ds: Any, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A Dataset's items stacked: x (N, ...) and, when items are (x, y) pairs, the labels y (N,)."""
    n = len(ds)
    if n == 0:
        raise ConfigError(f"{where} is an empty Dataset")
    xs, ys, labelled = [], [], None
    for i in range(n):
        item = ds[i]
        if isinstance(item, (tuple, list)) and len(item) == 1:  # TensorDataset(x) yields (x,)
            item = item[0]
        pair = isinstance(item, (tuple, list))
        if pair and len(item) != 2:
            raise ConfigError(f"{where}[{i}] holds {len(item)} values; a Dataset item is x, (x,) or (x, y)")
        x, y = item if pair else (item, None)
        labelled = pair if labelled is None else labelled
        if pair != labelled:
            raise ConfigError(f"{where}: item {i} {'is' if pair else 'is not'} an (x, y) pair, unlike item 0")
        xs.append(_numpy(x))
        if pair:
            y = _numpy(y)
            if y.shape != () or y.dtype.kind not in "iu":
                raise ConfigError(f"{where}[{i}]'s label must be one integer, not {y.dtype} shaped {tuple(y.shape)}")
            ys.append(int(y))
    if len({a.shape for a in xs}) > 1:
        raise ConfigError(f"{where}: items have different shapes ({xs[0].shape} and others); stack needs one")
    return np.stack(xs), (np.asarray(ys, dtype=np.int64) if ys else None)


def _images(value: Any, where: str) -> np.ndarray:
    """Checked image values of one array: (N, D), (N, H, W), or (N, 1, H, W) kept as (N, H, W)."""
    x = _numpy(value)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]  # one channel first, as PyTorch lays images out
    if x.ndim not in (2, 3) or len(x) == 0:
        raise ConfigError(f"{where} must be images shaped (N, D), (N, H, W) or (N, 1, H, W) with N >= 1, "
                          f"not {tuple(x.shape)}")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise ConfigError(f"{where} holds NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(f"{where} values must lie in [0, 1] (found {float(x.min()):g} to {float(x.max()):g})")
    elif x.dtype != np.uint8 and x.dtype.kind != "b":
        raise ConfigError(f"{where} must hold floats in [0, 1] or uint8 values 0-255, not {x.dtype}")
    return x


def _labels(value: Any, n: int, where: str) -> np.ndarray:
    y = _numpy(value)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ConfigError(f"{where} must be {n} integers, one per example of data, "
                          f"not {y.dtype} shaped {tuple(y.shape)}")
    check_label_range(where, y)
    return y.astype(np.int64)


def _one(value: Any, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and labels (or None) of an array or a Dataset."""
    if is_dataset(value):
        x, y = _from_dataset(value, where)
        return _images(x, where), (None if y is None else _labels(y, len(x), f"{where}'s labels"))
    return _images(value, where), None


def take(overrides: dict[str, Any], labels: Any = None) -> dict[str, np.ndarray] | None:
    """Pop in-memory data (and labels) from train()'s keywords, checked; None when data names a dataset.

    An array or a Dataset gets the fixed 20% test hold-out of npz data (data/images.py); a (train, test) pair
    keeps its own test split. Labels come with a Dataset's (x, y) items, or as `labels` for one array.
    """
    data = overrides.get("data")
    if not is_data(data):
        if labels is not None:
            raise ConfigError("labels go with array data (data=x, labels=y); a named dataset brings its own")
        if isinstance(data, (tuple, list)):
            raise ConfigError(f"data as a sequence must be a (train, test) pair of arrays or Datasets, "
                              f"not {len(data)} {type(data).__name__} items")
        return None
    if isinstance(data, tuple) and is_array(data[0]) and is_array(data[1]) and _numpy(data[1]).ndim == 1:
        data, labels = _pair_labels(data[0], labels), data[1]  # (x, y): images and their labels
    if isinstance(data, tuple):
        if labels is not None:
            raise ConfigError("labels go with one array (data=x, labels=y); a (train, test) pair brings its labels "
                              "as Dataset items (x, y)")
        (xtr, ytr), (xte, yte) = _one(data[0], "data[0] (train)"), _one(data[1], "data[1] (test)")
        if xtr.shape[1:] != xte.shape[1:]:
            raise ConfigError(f"train examples are shaped {xtr.shape[1:]}, test examples {xte.shape[1:]}; "
                              f"give one shape")
        if (ytr is None) != (yte is None):
            raise ConfigError("labels need both train and test items as (x, y), or neither")
        arrays = {"x_train": xtr, "x_test": xte} | ({"y_train": ytr, "y_test": yte} if ytr is not None else {})
    else:
        x, y = _one(data, "data")
        if labels is not None:
            if y is not None:
                raise ConfigError("labels are given twice: as the Dataset's (x, y) items and as labels")
            y = _labels(labels, len(x), "labels")
        arrays = {"x": x} | ({"y": y} if y is not None else {})
    overrides["data"] = PLACEHOLDER
    return arrays


def _pair_labels(x: Any, labels: Any) -> Any:
    """x of a data=(x, y) pair, refusing labels given a second time."""
    if labels is not None:
        raise ConfigError("labels are given twice: as data=(x, y) and as labels")
    return x


def _conditioned(data: ImageData, c: cfg.Config) -> ImageData:
    """The arrays' data with each row's one-hot label appended when c is conditional (data/conditioning.py)."""
    return conditioning.with_labels(data, c.classes) if c.conditional else data


def load(arrays: dict[str, np.ndarray], c: cfg.Config) -> ImageData:
    """The data set of the arrays, split as a config's npz data would be (labels packed: conditional = true)."""
    if models.likelihood_for(c) == "multinomial":
        raise ConfigError("array data holds images; the multinomial likelihood (model nvdm) models word counts")
    return _conditioned(from_arrays("data", arrays, c.val_fraction, c.seed), c)


def keep(arrays: dict[str, np.ndarray], run: str | Path, c: cfg.Config) -> tuple[cfg.Config, ImageData]:
    """Write the arrays into the run folder; the config then names that file, and its data is read back."""
    path = RunFolder(run).data_arrays
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())
    c = c.replace(data=f"npz:{path.resolve()}")
    return c, _conditioned(load_images(c.data, val_fraction=c.val_fraction, image_size=c.image_size,
                                       split_seed=c.seed), c)
