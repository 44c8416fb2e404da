"""PNG figures from plain arrays and metric logs (matplotlib Figure objects, no screen, no torch)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ..atomic import atomic_write

DPI = 110
STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "image.interpolation": "nearest",
}
PAD_VALUE = 0.5  # mid grey between tiles: visible against both black and white digits


def _figure(width: float, height: float) -> Figure:
    """A new Figure in the library's style (no pyplot, so no backend is needed)."""
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path: str | Path) -> Path:
    """Write fig as a PNG, creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(png, dpi=DPI, format="png", facecolor="white")
    atomic_write(path, png.getvalue())  # a kill mid-save leaves the old picture, never half of one
    return path


def _as_images(images: np.ndarray) -> np.ndarray:
    """(N, H, W), (N, C, H, W) or (N, H, W, C), C in {1, 3} -> (N, H, W) or (N, H, W, 3) in [0, 1]."""
    a = np.asarray(images, dtype=np.float64)
    if a.ndim == 4:
        if a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):  # already channel-last
            a = a[..., 0] if a.shape[3] == 1 else a
        elif a.shape[1] == 1:
            a = a[:, 0]
        elif a.shape[1] == 3:
            a = a.transpose(0, 2, 3, 1)
        else:
            raise ValueError(f"images of shape {a.shape}: expected 1 or 3 channels in axis 1")
    elif a.ndim != 3:
        raise ValueError(f"images of shape {a.shape}: expected (N, H, W) or (N, C, H, W)")
    return np.clip(a, 0.0, 1.0)


def tile(images: np.ndarray, nrow: int, pad: int = 1, pad_value: float = PAD_VALUE) -> np.ndarray:
    """Tile N images, `nrow` per row (as torchvision's make_grid), with `pad` pixels around each tile."""
    a = _as_images(images)
    n, h, w = a.shape[:3]
    cols = max(1, min(int(nrow), n)) if n else 1
    rows = -(-n // cols) if n else 1
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *a.shape[3:]), pad_value, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = a[i]
    return out


def _show(ax: Any, grid: np.ndarray, **kw: Any) -> Any:
    """imshow a tiled greyscale or RGB array with no ticks or grid."""
    im = ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    return im


def curves(metrics: list[dict], path: str | Path) -> Path:
    """Training loss and negative validation bounds per epoch, plus seconds per epoch when logged."""
    rows = sorted((m for m in metrics if "epoch" in m), key=lambda m: m["epoch"])
    timed = [m for m in rows if m.get("train_seconds") is not None]
    fig = _figure(10.0 if timed else 6.0, 3.8)
    axes = fig.subplots(1, 2 if timed else 1, squeeze=False)[0]
    ax = axes[0]
    series = [("train_loss", 1.0, "train loss"), ("val_elbo", -1.0, "validation −ELBO"),
              ("val_iwae", -1.0, "validation −IWAE"), ("val_recon", -1.0, "validation −log p(x | f(x))")]
    for key, sign, label in series:
        pts = [(m["epoch"], sign * float(m[key])) for m in rows if m.get(key) is not None]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker="o", markersize=3 if len(pts) > 1 else 5, linewidth=1.5, label=label)
    ax.set_title("loss and validation bound (nats / example)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats / example (lower is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    if timed:
        ax2 = axes[1]
        ep = [m["epoch"] for m in timed]
        sec = [float(m["train_seconds"]) for m in timed]
        ax2.bar(ep, sec, width=0.8, color="tab:gray", alpha=0.8)
        ax2.set_title(f"training time per epoch (total {sum(sec):.1f} s)")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("seconds / epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def image_grid(images: np.ndarray, path: str | Path, *, nrow: int, title: str = "",
               row_labels: list[str] | None = None) -> Path:
    """Images tiled `nrow` per row on a greyscale map, optionally with a label left of each row."""
    a = _as_images(images)
    grid = tile(a, nrow)
    h = a.shape[1]
    cols = max(1, min(nrow, len(a)))
    rows = -(-len(a) // cols) if len(a) else 1
    width = min(10.0, max(2.5, 0.7 * cols))  # about 0.7 inch per tile
    height = width * grid.shape[0] / grid.shape[1]
    if height > 10.0:
        width, height = width * 10.0 / height, 10.0
    width += 1.4 if row_labels else 0.2
    height += 0.5 if title else 0.2
    fig = _figure(width, height)
    ax = fig.subplots()
    _show(ax, grid)
    if row_labels:
        centres = [1 + r * (h + 1) + h / 2 - 0.5 for r in range(rows)]
        ax.set_yticks(centres[:len(row_labels)], list(row_labels)[:rows])
        ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def recon(originals: np.ndarray, reconstructions: np.ndarray, path: str | Path, n: int = 16) -> Path:
    """Data above its reconstructions: one row pair, or two row pairs of 8 when n > 8."""
    x, xr = _as_images(originals)[:n], _as_images(reconstructions)[:n]
    n = min(len(x), len(xr))
    cols = n if n <= 8 else 8
    blocks, labels = [], []
    for start in range(0, n, cols):
        chunk = slice(start, min(start + cols, n))
        for arr, label in ((x[chunk], "data"), (xr[chunk], "reconstruction")):
            filler = np.full((cols - len(arr), *arr.shape[1:]), PAD_VALUE)
            blocks.append(np.concatenate([arr, filler]))
            labels.append(label)
    return image_grid(np.concatenate(blocks), path, nrow=cols, title="test images and reconstructions (decoder means)",
                      row_labels=labels)


def samples(images: np.ndarray, path: str | Path, title: str = "samples from the prior") -> Path:
    """An 8×8 grid of decoded draws from the prior (or of an autoregressive model's draws)."""
    return image_grid(_as_images(images)[:64], path, nrow=8, title=title)


def latent(z: np.ndarray, labels: np.ndarray | None, path: str | Path, *, title: str,
           xlabel: str = "z1", ylabel: str = "z2") -> Path:
    """2-D latent codes as a scatter, coloured by class (legend) or by a continuous label (colorbar)."""
    fig = _figure(6.4, 5.2)
    ax = fig.subplots()
    scatter(fig, ax, z, labels)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def scatter(fig: Figure, ax: Any, z: np.ndarray, labels: np.ndarray | None) -> None:
    """Codes (N, 2) on ax, coloured by class (legend, the same colour per class every call) or by a number."""
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if z.shape[1] == 1:
        z = np.concatenate([z, np.zeros_like(z)], axis=1)
    size = float(np.clip(8000.0 / max(len(z), 1), 5.0, 30.0))
    alpha = float(np.clip(0.9 - len(z) / 20000.0, 0.35, 0.85))
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=size, alpha=alpha, color="tab:blue", linewidths=0)
    else:
        lab = np.asarray(labels).reshape(-1)
        classes = np.unique(lab)
        discrete = lab.dtype.kind in "iub" or (lab.dtype.kind == "f" and np.all(lab == np.round(lab)))
        if (discrete and len(classes) <= 10) or lab.dtype.kind in "OSU":
            cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
            for i, c in enumerate(classes):
                m = lab == c
                name = str(int(c)) if lab.dtype.kind == "f" else str(c)
                ax.scatter(z[m, 0], z[m, 1], s=size, alpha=alpha, color=cmap(i % cmap.N), linewidths=0, label=name)
            leg = ax.legend(title="label", loc="center left", bbox_to_anchor=(1.0, 0.5),
                            markerscale=max(1.0, 20 / size))
            for h in leg.legend_handles:
                h.set_alpha(1.0)
        else:
            sc = ax.scatter(z[:, 0], z[:, 1], c=lab.astype(np.float64), cmap="viridis", s=size, alpha=alpha,
                            linewidths=0)
            fig.colorbar(sc, ax=ax, label="label")


def _tick_positions(n: int, count: int = 5) -> list[int]:
    """About `count` evenly spread grid indices including both ends."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(count, n))})


def manifold(images: np.ndarray, path: str | Path, *, n: int, ticks_x: np.ndarray, ticks_y: np.ndarray,
             title: str, xlabel: str = "z1", ylabel: str = "z2") -> Path:
    """An n×n decoded grid as one picture (row 0 = highest z2), ticks at a few latent coordinates."""
    a = _as_images(images)
    h, w = a.shape[1:3]
    pad = 1 if min(h, w) < 16 else 0  # tiny images (8x8 digits) run together without a gutter
    grid = tile(a, n, pad=pad)
    side = max(7.0, 0.42 * n)  # about 46 px per tile at DPI (21 x 21: 8.8 inches), so a digit or garment reads
    fig = _figure(side, side + 0.4)
    ax = fig.subplots()
    _show(ax, grid)
    tx, ty = np.asarray(ticks_x, dtype=np.float64), np.asarray(ticks_y, dtype=np.float64)
    ix = _tick_positions(n)
    ax.set_xticks([pad + c * (w + pad) + w / 2 - 0.5 for c in ix], [f"{tx[c]:.2g}" for c in ix])
    ax.set_yticks([pad + r * (h + pad) + h / 2 - 0.5 for r in ix], [f"{ty[n - 1 - r]:.2g}" for r in ix])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path)


def _rows_grid(images: np.ndarray) -> tuple[np.ndarray, int, int, int, int]:
    """Rows of images (rows, cols, H, W[, C]) tiled into one picture, with rows, cols and each image's H and W."""
    a = np.asarray(images, dtype=np.float64)
    rows, cols = a.shape[:2]
    flat = _as_images(a.reshape(rows * cols, *a.shape[2:]))
    return tile(flat, cols), rows, cols, *flat.shape[1:3]


def interpolation(images: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Rows of latent interpolations; the first and last columns (the data) are framed."""
    grid, rows, steps, _, w = _rows_grid(images)
    fig = _figure(min(12.0, 0.6 * steps + 1.0), min(10.0, 0.6 * rows + 1.0))
    ax = fig.subplots()
    _show(ax, grid)
    for c in {0, steps - 1}:
        ax.add_patch(Rectangle((c * (w + 1), 0), w + 1, grid.shape[0] - 1, fill=False, edgecolor="tab:orange",
                               linewidth=2.0, clip_on=False))
    centres = [1 + c * (w + 1) + w / 2 - 0.5 for c in range(steps)]
    labels = ["data" if c in (0, steps - 1) else "" for c in range(steps)]
    ax.set_xticks(centres, labels)
    ax.tick_params(axis="x", length=0, labelcolor="tab:orange")
    ax.set_title("interpolation between test images in latent space" + title)
    return _save(fig, path)


def traversal(images: np.ndarray, path: str | Path, *, values: np.ndarray, dims: list[int], title: str) -> Path:
    """Rows of latent traversals, (rows, 1 + steps, H, W): the data image (framed), then the decoded sweep;
    values (rows, steps) label each row's ends, dims the latent dimension of each row."""
    grid, rows, cols, h, w = _rows_grid(images)
    fig = _figure(min(12.0, 0.6 * cols + 2.0), min(14.0, 0.6 * rows + 1.0))
    ax = fig.subplots()
    _show(ax, grid)
    ax.add_patch(Rectangle((0, 0), w + 1, grid.shape[0] - 1, fill=False, edgecolor="tab:orange", linewidth=2.0,
                           clip_on=False))
    ax.set_yticks([1 + r * (h + 1) + h / 2 - 0.5 for r in range(rows)],
                  [f"z{d + 1} [{values[i, 0]:.1f}, {values[i, -1]:.1f}]" for i, d in enumerate(dims)])
    ax.set_xticks([1 + w / 2 - 0.5], ["data"])
    ax.tick_params(length=0)
    ax.set_title(title)
    return _save(fig, path)


def topics(table: list[tuple[str, list[str], list[str]]], path: str | Path, *, title: str = "topics") -> Path:
    """A text table: for each latent dimension, the words at its + end and at its − end."""
    wrap = 48
    cells = [[str(label), "\n".join(textwrap.wrap(", ".join(pos), wrap)) or "–",
              "\n".join(textwrap.wrap(", ".join(neg), wrap)) or "–"] for label, pos, neg in table]
    lines = [max(c.count("\n") + 1 for c in row) for row in cells]
    line_h = 0.22
    fig = _figure(10.0, 0.8 + line_h * (sum(lines) + len(lines) + 1))
    ax = fig.subplots()
    ax.axis("off")
    ax.set_title(title)
    if cells:
        tab = ax.table(cellText=cells, colLabels=["dimension", "+ end", "− end"], colWidths=[0.14, 0.43, 0.43],
                       cellLoc="left", loc="upper center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(9)
        total = sum(lines) + len(lines) + 1
        for (r, _), cell in tab.get_celld().items():
            cell.set_height((1.0 if r == 0 else lines[r - 1] + 1) / total)
            cell.set_edgecolor("#cccccc")
            cell.PAD = 0.03
            if r == 0:
                cell.set_text_props(weight="bold")
                cell.set_facecolor("#f2f2f2")
    else:
        ax.text(0.5, 0.5, "(no rows)", ha="center", va="center")
    return _save(fig, path)


__all__ = ["tile", "curves", "image_grid", "recon", "samples", "latent", "scatter", "manifold", "interpolation",
           "topics"]
