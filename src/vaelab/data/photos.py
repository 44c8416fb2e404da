"""photo-patches: a small colour dataset that needs no download, cut from scikit-learn's two bundled photographs.

scikit-learn ships china.jpg and flower.jpg (427 x 640 RGB, `sklearn.datasets.load_sample_images`). Each is
halved with PIL's box filter (to 213 x 320) and cut into non-overlapping 8 x 8 patches: 26 x 40 = 1,040 per
photograph, 2,080 in all, labelled by their photograph (0 china, 1 flower), in one fixed shuffled order (so the
first test patches, which the report draws, are not all sky). Non-overlapping, so no pixel of a test patch is
seen in training. 8 x 8 keeps it as quick to train on as the digits, and divisible by 4 for the
conv networks.
"""

from __future__ import annotations

import numpy as np

NAME = "photo-patches"
PATCH = 8
SHRINK = 2  # each photograph halved before cutting
ORDER_SEED = 0
CLASS_NAMES = ("china", "flower")


def patches() -> tuple[np.ndarray, np.ndarray]:
    """(x, y): uint8 patches (N, 3, 8, 8) and their labels (N,) int64, in the fixed shuffled order."""
    from PIL import Image
    from sklearn.datasets import load_sample_images  # lazy: the import is slow

    xs, ys = [], []
    for label, photo in enumerate(load_sample_images().images):  # (427, 640, 3) uint8 each
        h, w = photo.shape[0] // SHRINK, photo.shape[1] // SHRINK
        small = np.asarray(Image.fromarray(photo).resize((w, h), Image.Resampling.BOX))  # (h, w, 3)
        rows, cols = h // PATCH, w // PATCH
        cut = small[:rows * PATCH, :cols * PATCH].reshape(rows, PATCH, cols, PATCH, 3)
        xs.append(cut.transpose(0, 2, 4, 1, 3).reshape(rows * cols, 3, PATCH, PATCH))  # (n, 3, 8, 8)
        ys.append(np.full(rows * cols, label, dtype=np.int64))
    order = np.random.default_rng(ORDER_SEED).permutation(sum(len(x) for x in xs))
    return np.ascontiguousarray(np.concatenate(xs)[order]), np.concatenate(ys)[order]
