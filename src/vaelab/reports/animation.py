"""Latent space through training: the test split's posterior means at each kept epoch, as an animated GIF.

Each frame is one epoch whose weights `--save-every` kept, drawn like plots.latent on axes fixed for
the whole animation, so the codes' movement is what changes. Latents wider than 2-D are projected
on each epoch's own top-2 principal directions, each axis's sign chosen to agree with the previous
frame's (a principal direction's sign is arbitrary, and a flip would read as a jump).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.animation import PillowWriter
from sklearn.decomposition import PCA

from ..atomic import atomic_write
from . import plots

MAX_FRAMES = 40
FPS = 2
DPI = 80


def frames(epochs: list[int], most: int = MAX_FRAMES) -> list[int]:
    """At most `most` of the kept epochs, evenly spread, always with the first and the last."""
    if len(epochs) <= most:
        return list(epochs)
    pick = np.unique(np.round(np.linspace(0, len(epochs) - 1, most)).astype(int))
    return [epochs[i] for i in pick]


def project(codes: list[np.ndarray]) -> tuple[list[np.ndarray], tuple[str, str]]:
    """Each epoch's codes (N, Dz) as (N, 2): the codes themselves up to 2-D, else their top-2 PCA plane."""
    dz = codes[0].shape[1]
    if dz == 1:
        return [np.concatenate([z, np.zeros_like(z)], 1) for z in codes], ("z1", "")
    if dz == 2 or len(codes[0]) < 2:
        return [z[:, :2] for z in codes], ("z1", "z2")
    out: list[np.ndarray] = []
    for z in codes:
        p = PCA(2).fit_transform(z)  # (N, 2)
        if out:
            p *= np.where((p * out[-1]).sum(0) < 0, -1.0, 1.0)  # keep each axis pointing the same way
        out.append(p)
    return out, ("PC1 (of each epoch's codes)", "PC2")


def limits(z: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits holding 99% of every frame's points, with a margin: the same for every frame."""
    allz = np.concatenate(z)
    lo, hi = np.percentile(allz, [0.5, 99.5], axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-6)
    return lo - pad, hi + pad


def latent_gif(z: list[np.ndarray], labels: np.ndarray | None, path: str | Path, *, epochs: list[int], title: str,
               names: tuple[str, str]) -> Path:
    """An animated GIF of the codes, one frame per epoch (matplotlib's PillowWriter), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = limits(z)
    fig = plots._figure(6.4, 5.2)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, matplotlib.rc_context(plots.STYLE):
        out = Path(tmp) / path.name
        writer = PillowWriter(fps=FPS)
        with writer.saving(fig, str(out), DPI):
            for codes, epoch in zip(z, epochs):
                fig.clear()
                ax = fig.subplots()
                plots.scatter(fig, ax, codes, labels)
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
                ax.set_title(f"{title}, epoch {epoch}")
                ax.set_xlabel(names[0])
                ax.set_ylabel(names[1])
                writer.grab_frame(facecolor="white")
        atomic_write(path, out.read_bytes())
    return path
