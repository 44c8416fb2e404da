"""Image datasets as flat tensors with train/val/test splits."""

from __future__ import annotations

import dataclasses
import struct
import warnings
from pathlib import Path

import numpy as np
import torch

from ..config.choices import DATASETS as ALL_DATASETS
from ..config.choices import IMAGE_DATASETS
from ..errors import DataError, unknown
from ..runtime import split_noise
from . import channels as colour
from . import idx, photos, shapes
from .arrays import ImageData, _check_values, _labels, check_label_range, check_sizes
from .npfiles import memory_bytes, read_npz
from .npy_data import load_npy

DATASETS = IMAGE_DATASETS  # the list lives in config/schema.py, where `--help` reads it too
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
TEST_FRACTION = 0.2
TEST_SEED = 0  # fixed, so test numbers are comparable across runs with different split seeds
MAX_PIXELS = 2**26  # 8192 x 8192: a larger image is refused before it is decoded (decompression bombs)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli draw with probabilities x (float in [0,1]) -> float 0/1 tensor, same device.

    1[u < p] with u ~ U[0, 1) is a Bernoulli(p) draw; on the CPU it is ~3x faster than
    torch.bernoulli, which matters because training draws one per pixel per step.
    """
    if not x.is_floating_point():
        raise TypeError(f"binarize needs probabilities as a float tensor, got {x.dtype}")
    u = split_noise.uniform(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)


def dequantize(x: torch.Tensor, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantization of quantised values x = v * scale, v in {0, 1, ..., L-1}, L = 1/scale + 1.

    x~ = (v + u) / L with u ~ U[0, 1): each level becomes a bin of width 1/L in [0, 1), so a density
    on x~ is a proper density and -log p(x~) + D log L bounds -log P(v) from above in expectation
    (Theis et al., 2016). Written as (x + scale * u) / (1 + scale) to work on the scaled values.
    """
    u = split_noise.uniform(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + scale * u) / (1.0 + scale)


def levels(scale: float) -> int:
    """L, the number of quantisation levels of values stored as v * scale, v in {0, ..., L-1} (256 for 8-bit pixels)."""
    return round(1.0 / scale) + 1


def rows(stored: torch.Tensor, idx: torch.Tensor | None, scale: float) -> torch.Tensor:
    """Float (B, D) values of the stored rows idx (all rows when idx is None), dense or sparse storage.

    index_select is used rather than stored[idx]: on the CPU it gathers uint8 rows ~5x faster.
    Sparse CSR storage (word counts) is gathered by its row pointers, since torch has no
    index_select for CSR and COO's is O(nnz) per call.
    """
    if stored.layout == torch.sparse_csr:
        x = stored.to_dense() if idx is None else _csr_rows(stored, idx)
    else:
        x = stored if idx is None else stored.index_select(0, idx)
        if x.layout != torch.strided:
            x = x.to_dense()
    return x.float() * scale if scale != 1.0 else x.float()


def _csr_positions(crow: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """For rows idx (B,) of a CSR tensor with row pointers crow: the positions in its col/val of their
    entries, row after row, (total,); the entries each row stores, (B,); and total."""
    start = crow[idx]  # (B,) where each row's entries begin in col/val
    length = crow[idx + 1] - start  # (B,) stored entries per row
    total = int(length.sum())
    before = torch.cumsum(length, 0) - length  # (B,) where each row begins in the gathered list
    # position in col/val of every gathered entry: its row's start plus its rank within the row
    pos = torch.arange(total, device=crow.device) + torch.repeat_interleave(start - before, length, output_size=total)
    return pos, length, total


def _csr_rows(stored: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Dense (B, D) rows idx of a sparse CSR (N, D) tensor, on its device."""
    crow, col, val = stored.crow_indices(), stored.col_indices(), stored.values()
    idx = idx.to(crow.device)
    pos, length, total = _csr_positions(crow, idx)
    width = stored.shape[1]
    flat = torch.repeat_interleave(torch.arange(len(idx), device=crow.device) * width, length,
                                   output_size=total) + col[pos]
    out = torch.zeros(len(idx) * width, dtype=val.dtype, device=val.device)
    out[flat] = val[pos]
    return out.view(len(idx), width)


def take_rows(stored: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows idx (B,) of stored (N, D), kept in its layout: a dense copy, or a CSR (B, D) tensor holding
    copies of those rows' entries (a CSR row slice; a sharded corpus keeps only its shards' documents)."""
    if stored.layout != torch.sparse_csr:
        return stored.index_select(0, idx)
    crow, col, val = stored.crow_indices(), stored.col_indices(), stored.values()
    idx = idx.to(crow.device)
    pos, length, _ = _csr_positions(crow, idx)
    rows_crow = torch.cat([crow.new_zeros(1), torch.cumsum(length, 0)])  # (B + 1,)
    with warnings.catch_warnings():  # torch calls its CSR support beta; construction is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(rows_crow, col[pos], val[pos], size=(len(idx), stored.shape[1]))


def _hold_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (kept, held-out) indices; round(fraction * n) held out, at least 1 if fraction > 0, never all."""
    k = min(max(1, round(fraction * n)), n - 1) if fraction > 0 and n > 1 else 0
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _assemble(name: str, shape: tuple[int, ...], scale: float, x_train: np.ndarray, y_train: np.ndarray | None,
              x_test: np.ndarray, y_test: np.ndarray | None, val_fraction: float, split_seed: int) -> ImageData:
    """Validate, hold out the validation split from train, flatten and wrap as tensors."""
    check_sizes(name, shape, len(x_train), len(x_test))
    for split, x in (("train", x_train), ("test", x_test)):
        _check_values(name, split, x, scale)
    keep, held = _hold_out(len(x_train), val_fraction, split_seed)
    if len(keep) == 0:
        raise DataError(f"{name}: {len(x_train)} training examples leave none after the validation split")
    dim = int(np.prod(shape))

    def flat(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), dim)))

    def pick(y: np.ndarray | None, i: np.ndarray) -> np.ndarray | None:
        return None if y is None else y[i]

    return ImageData(name=name, shape=shape, train=flat(x_train[keep]), val=flat(x_train[held]), test=flat(x_test),
                     y_train=_labels(pick(y_train, keep)), y_val=_labels(pick(y_train, held)),
                     y_test=_labels(y_test), scale=scale)


def _split_test(name: str, x: np.ndarray, y: np.ndarray | None) -> tuple:
    """Fixed 20% test hold-out for sources that ship without a test split."""
    if len(x) < 3:
        raise DataError(f"{name}: needs at least 3 examples to make train/test splits, found {len(x)}")
    keep, held = _hold_out(len(x), TEST_FRACTION, TEST_SEED)
    return x[keep], (None if y is None else y[keep]), x[held], (None if y is None else y[held])


def _digits(val_fraction: float, split_seed: int) -> ImageData:
    from sklearn.datasets import load_digits  # lazy: sklearn import is slow and only needed here

    d = load_digits()
    x = d.images.astype(np.uint8)  # values are whole numbers 0..16, so the cast is exact
    y = d.target.astype(np.int64)
    return _assemble("digits", (1, 8, 8), 1 / 16, *_split_test("digits", x, y), val_fraction, split_seed)


def _shapes(val_fraction: float, split_seed: int) -> ImageData:
    """The generated shapes grid (data/shapes.py): labels are the shape, factors every factor's grid index."""
    x, factors = shapes.generate()
    order = np.arange(len(x))  # carried through the splits as labels, then swapped for the factors
    d = _assemble("shapes", (1, shapes.SIZE, shapes.SIZE), 1.0, *_split_test("shapes", x, order),
                  val_fraction, split_seed)
    f = {split: torch.from_numpy(factors[getattr(d, f"y_{split}").numpy()]) for split in ("train", "val", "test")}
    return dataclasses.replace(d, y_train=f["train"][:, 0].clone(), y_val=f["val"][:, 0].clone(),
                               y_test=f["test"][:, 0].clone(), factors_train=f["train"], factors_val=f["val"],
                               factors_test=f["test"], factor_names=shapes.FACTOR_NAMES)


def _idx(name: str, data_dir: str | None, val_fraction: float, split_seed: int) -> ImageData:
    d = idx.find_files(name, data_dir)
    tr_x, tr_y, te_x, te_y = (idx.read_idx(d / f, idx.LABELS_MAGIC if "labels" in f else idx.IMAGES_MAGIC)
                              for f in idx.FILES)
    for x, y, f in ((tr_x, tr_y, idx.FILES[0]), (te_x, te_y, idx.FILES[2])):
        if len(x) != len(y):
            raise DataError(f"{name}: {d / f} has {len(x)} images but its labels file has {len(y)}")
        if x.shape[1:] != tr_x.shape[1:]:
            raise DataError(f"{name}: {d / f} images are {x.shape[1:]}, train images are {tr_x.shape[1:]}")
    shape = (1, *tr_x.shape[1:])
    return _assemble(name, shape, 1 / 255, tr_x, tr_y.astype(np.int64), te_x, te_y.astype(np.int64),
                     val_fraction, split_seed)


def _npz_array(name: str, key: str, a: np.ndarray) -> np.ndarray:
    """Image array from an npz: uint8 kept, floats/bools as float32, anything else refused; colour as (N, C, H, W)."""
    if a.ndim not in (2, 3, 4):
        raise DataError(f"{name}: {key} has shape {a.shape}; expected (N, D), (N, H, W), (N, C, H, W) or (N, H, W, C)")
    if a.ndim == 4:
        a = colour.to_nchw(name, key, a)
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "fb":
        if a.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(a)))
            if bad:
                raise DataError(f"{name}: {key} has {bad} NaN/inf values")
            if a.size and (a.min() < 0 or a.max() > 1):
                raise DataError(f"{name}: {key} float values must lie in [0, 1] "
                                f"(found min {float(a.min()):g}, max {float(a.max()):g})")
        return a.astype(np.float32)
    raise DataError(f"{name}: {key} has dtype {a.dtype}; expected uint8 (0-255) or floats in [0, 1]")


def _npz_labels(name: str, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.dtype.kind not in "iu" or y.shape != (n,):
        raise DataError(f"{name}: {key} must be {n} integer labels, got dtype {y.dtype} shape {y.shape}")
    check_label_range(f"{name}: {key}", y)
    return y.astype(np.int64)


def _npz(name: str, path: Path, val_fraction: float, split_seed: int) -> ImageData:
    return from_arrays(name, read_npz(name, path), val_fraction, split_seed)  # a regular file, or one error


def from_arrays(name: str, arrays: dict[str, np.ndarray], val_fraction: float, split_seed: int) -> ImageData:
    """ImageData from an npz's arrays: x_train and x_test (y_train, y_test), or x (y) with a fixed test hold-out."""
    if "x_train" in arrays and "x_test" in arrays:
        xk, yk = ("x_train", "x_test"), ("y_train", "y_test")
    elif "x" in arrays:
        xk, yk = ("x",), ("y",)
    else:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(f"{name}: needs arrays x_train and x_test, or x (found: {found})")
    xs = [_npz_array(name, k, arrays[k]) for k in xk]
    if len({(x.shape[1:], x.dtype) for x in xs}) > 1:
        a, b = xs
        raise DataError(f"{name}: x_train is {a.dtype} {a.shape[1:]}, x_test is {b.dtype} {b.shape[1:]}")
    have = [k in arrays for k in yk]
    if any(have) and not all(have):
        raise DataError(f"{name}: labels need both y_train and y_test, or neither")
    ys = [_npz_labels(name, k, arrays[k], len(x)) for k, x in zip(yk, xs)] if all(have) else [None] * len(xs)
    parts = (xs[0], ys[0], xs[1], ys[1]) if len(xs) == 2 else _split_test(name, xs[0], ys[0])
    x0 = parts[0]
    shape = (x0.shape[1],) if x0.ndim == 2 else (1, *x0.shape[1:]) if x0.ndim == 3 else x0.shape[1:]
    scale = 1 / 255 if x0.dtype == np.uint8 else 1.0
    return _assemble(name, shape, scale, *parts, val_fraction, split_seed)


def _folder(name: str, root: Path, size: int, val_fraction: float, split_seed: int, channels: int = 0) -> ImageData:
    """Images in root/<class>/, resized to size x size: grey (1 channel) when every pixel of every image has
    R = G = B (a grey image saved as RGB is grey), else RGB (3); channels = 1 or 3 converts them all to that
    (1: PIL's luma, L = R 299/1000 + G 587/1000 + B 114/1000)."""
    from PIL import Image, UnidentifiedImageError

    if size < 1:
        raise DataError(f"{name}: image_size must be >= 1, got {size}")
    if not root.is_dir():
        raise DataError(f"{name}: folder not found")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(f, label) for label, c in enumerate(classes)
             for f in sorted(c.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_EXTS]
    if not files:
        raise DataError(f"{name}: no images found (expected {root}/<class>/*.png|jpg|jpeg|bmp|gif)")
    c = 1 if channels == 1 else 3  # decoded as RGB, then kept grey when it is (channels = 0)
    if len(files) * c * size * size > memory_bytes():
        raise DataError(f"{name}: {len(files)} images of {c}x{size}x{size} need more than this machine's memory")
    x = np.empty((len(files), c, size, size), dtype=np.uint8)  # (N, C, H, W)
    for i, (f, _) in enumerate(files):
        try:
            with Image.open(f) as im:  # reads the header only: the size is known before any pixel is decoded
                w, h = im.size
                if w * h > MAX_PIXELS or w * h > 64 * max(f.stat().st_size, 1) * 1032:
                    raise DataError(f"{name}: image {f} claims {w}x{h} pixels (more than {MAX_PIXELS}, or more "
                                    f"than its {f.stat().st_size} bytes can hold); refusing to decode it")
                pixels = np.asarray(im.convert("L" if c == 1 else "RGB").resize((size, size),
                                                                                 Image.Resampling.BILINEAR))
                x[i] = pixels[None] if c == 1 else pixels.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError,
                struct.error, EOFError) as e:
            raise DataError(f"{name}: cannot read image {f} ({str(e).splitlines()[0] if str(e) else e!r})") \
                from None
    if channels == 0 and np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2]):
        x, c = np.ascontiguousarray(x[:, :1]), 1  # no colour in any image
    y = np.array([label for _, label in files], dtype=np.int64)
    return _assemble(name, (c, size, size), 1 / 255, *_split_test(name, x, y), val_fraction, split_seed)


def load_images(spec: str, *, data_dir: str | None = None, val_fraction: float = 0.1,
                image_size: int = 28, split_seed: int = 0, channels: int = 0) -> ImageData:
    """Load the dataset named by spec (see DATASETS) with train/val/test splits; channels (1 or 3; 0: what the
    images are) converts folder:PATH images and is checked against every other source's."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if channels not in (0, *colour.CHANNELS):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), not {channels}")
    kind, sep, path = spec.partition(":")
    if sep and path and kind == "folder":
        return _folder(spec, Path(path).expanduser(), image_size, val_fraction, split_seed, channels)
    data = _load(spec, data_dir, val_fraction, split_seed)
    colour.check(spec, data.shape, channels)
    return data


def _load(spec: str, data_dir: str | None, val_fraction: float, split_seed: int) -> ImageData:
    if spec == "digits":
        return _digits(val_fraction, split_seed)
    if spec == "shapes":
        return _shapes(val_fraction, split_seed)
    if spec in ("mnist", "fashion-mnist"):
        return _idx(spec, data_dir, val_fraction, split_seed)
    if spec == photos.NAME:
        x, y = photos.patches()
        return _assemble(spec, x.shape[1:], 1 / 255, *_split_test(spec, x, y), val_fraction, split_seed)
    kind, sep, path = spec.partition(":")
    if sep and path and kind == "npz":
        return _npz(spec, Path(path).expanduser(), val_fraction, split_seed)
    if sep and path and kind == "npy":
        return load_npy(spec, Path(path).expanduser(), val_fraction)
    raise DataError(unknown("dataset", spec, ALL_DATASETS))
