"""Class names of the image datasets that have them (a corpus carries its own, CorpusData.label_names)."""

from __future__ import annotations

from . import photos

DIGITS = tuple(str(i) for i in range(10))
# Xiao et al. 2017, Table 1 (the order of the label ids 0-9)
FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
SHAPES = ("square", "ellipse", "heart")  # data/shapes.py's shape factor
LABEL_NAMES = {"digits": DIGITS, "mnist": DIGITS, "fashion-mnist": FASHION_MNIST, photos.NAME: photos.CLASS_NAMES,
               "shapes": SHAPES}


def label_names(data: object) -> tuple[str, ...] | None:
    """The names of a dataset's label ids: its own (corpora), the known ones by dataset name, or None."""
    own = getattr(data, "label_names", None)
    if own is not None:
        return tuple(own)
    return LABEL_NAMES.get(str(getattr(data, "name", "")).partition(":")[0])
