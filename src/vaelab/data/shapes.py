"""`--data shapes`: a dSprites-like dataset (Matthey et al. 2017) generated here, with its factors as labels.

Every combination of five factors on a grid, each drawn once as a 32x32 binary image:
    shape     square, ellipse, heart                       (3)
    scale     half-width 3.5 to 6 pixels                    (4)
    rotation  0 to 78.75 degrees in 11.25 degree steps      (8: a square's 90 degree symmetry never repeats an image)
    x, y      centre 9 to 23 pixels in 2 pixel steps        (8 each)
so 3 * 4 * 8 * 8 * 8 = 6144 images. A pixel is on when at least half of its 4x4 sub-pixel samples lie
inside the shape: the images are deterministic (no random draw, the same bytes on every machine).
The generated arrays are kept for the process (functools.cache): a second load costs nothing.
Labels are the shape; `factors` (N, 5) holds every factor's grid index, `factor_names` their names,
which the disentanglement metrics (estimators/disentanglement.py) read.
"""

from __future__ import annotations

import functools

import numpy as np

FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SHAPES = ("square", "ellipse", "heart")
SIZE = 32
SCALES = np.linspace(3.5, 6.0, 4)  # half-width in pixels
ROTATIONS = np.deg2rad(np.arange(8) * 11.25)
POSITIONS = np.arange(8) * 2.0 + 9.0  # centre in pixels (pixel i spans [i, i+1))
SUB = 4  # sub-pixel samples per side


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether shape-frame points (u, v) (unit half-width, v pointing down the image) lie in the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":
        return u ** 2 + (v / 0.6) ** 2 <= 1.0
    # the heart (x^2 + y^2 - 1)^3 <= x^2 y^3, y up, scaled to about unit half-width
    a, b = u * 1.15, -v * 1.15 + 0.15
    return (a ** 2 + b ** 2 - 1.0) ** 3 <= a ** 2 * b ** 3


def grid() -> np.ndarray:
    """Every factor combination as grid indices, (N, 5) int64, the last factor varying fastest."""
    sizes = (len(SHAPES), len(SCALES), len(ROTATIONS), len(POSITIONS), len(POSITIONS))
    return np.stack(np.meshgrid(*map(np.arange, sizes), indexing="ij"), -1).reshape(-1, 5).astype(np.int64)


def render(factors: np.ndarray) -> np.ndarray:
    """Binary images (N, 32, 32) uint8 (0 or 1) for factor grid indices (N, 5)."""
    factors = np.asarray(factors, dtype=np.int64).reshape(-1, 5)
    offsets = (np.arange(SUB) + 0.5) / SUB  # (S,) sub-pixel centres within a pixel
    coords = (np.arange(SIZE)[:, None] + offsets).reshape(-1)  # (32 S,)
    py, px = np.meshgrid(coords, coords, indexing="ij")  # (32 S, 32 S) sample positions
    out = np.empty((len(factors), SIZE, SIZE), dtype=np.uint8)
    for i, (s, sc, r, x, y) in enumerate(factors):
        dx, dy = px - POSITIONS[x], py - POSITIONS[y]
        cos, sin = np.cos(ROTATIONS[r]), np.sin(ROTATIONS[r])
        u, v = (cos * dx + sin * dy) / SCALES[sc], (-sin * dx + cos * dy) / SCALES[sc]  # into the shape's frame
        cover = _inside(SHAPES[s], u, v).reshape(SIZE, SUB, SIZE, SUB).mean((1, 3))  # (32, 32) fraction inside
        out[i] = cover >= 0.5
    return out


@functools.cache
def generate() -> tuple[np.ndarray, np.ndarray]:
    """The whole grid: images (N, 32, 32) uint8 in {0, 1} and factor indices (N, 5), N = 6144."""
    factors = grid()
    images = render(factors)
    images.flags.writeable = factors.flags.writeable = False  # cached: nobody may change them
    return images, factors
