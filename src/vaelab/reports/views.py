"""From a run folder to arrays to PNGs: samples, reconstructions, latent scatter, manifold, interpolation, topics.

RunView(run, epoch=N) draws with the weights kept for epoch N (--save-every) into <kind>-epoch-NNN.png;
latent-epochs animates the latent scatter across every kept epoch (plots/latent-epochs.gif).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch.distributions import Normal

from ..data import ImageData, is_corpus
from ..data import rows as stored_rows
from ..data.labels import label_names
from ..distributions.densities import mean_image
from ..errors import VaelabError, need_count, unknown
from ..logs import info
from ..models.contract import is_exact, is_latent_variable
from ..runs import inputs, kept_data, loading
from ..runs.folder import RunFolder, epoch_weights
from ..runs.resolve import device as resolve_device
from ..terminal import printable
from ..topics import scores
from . import animation, plots

PLOT_SEED = 0


def image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """(H, W) to draw an example as a grey picture, (3, H, W) as a colour one, or None when it is not an image."""
    if len(shape) == 3 and shape[0] == 1:
        return shape[1], shape[2]
    if len(shape) == 3 and shape[0] == 3:
        return tuple(shape)
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        return side, side
    return None


def _pictures(x: torch.Tensor, hw: tuple[int, ...]) -> np.ndarray:
    """Flat rows (..., D) as pictures (N, H, W) or (N, 3, H, W) (plots.py draws both)."""
    return x.detach().float().cpu().numpy().reshape(-1, *hw)


def grid_probabilities(n: int) -> torch.Tensor:
    """The n probabilities (i + 0.5) / n at which the manifold grid takes quantiles (AEVB)."""
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def manifold_grid(n: int = 21, span: tuple[float, float, float, float] | None = None, *,
                  quantiles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates along each axis: quantiles (n, 2) at grid_probabilities(n), or a linear span.

    Without either, the standard Gaussian's quantiles (the AEVB figure's N(0, I) prior).
    """
    if span is not None:
        x0, x1, y0, y1 = span
        return np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    if quantiles is None:
        q = Normal(0.0, 1.0).icdf(grid_probabilities(n)).numpy()
        return q, q
    return np.asarray(quantiles[:, 0], dtype=np.float64), np.asarray(quantiles[:, 1], dtype=np.float64)


def grid_quantiles(model, n: int, codes: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
    """Per-axis quantiles (n, 2) for a 2-D latent's manifold grid, and what they are.

    The model's own prior's inverse CDF where it has one; else the empirical quantiles of the
    aggregate posterior (codes() gives the posterior means of the test split, (N, 2)).
    """
    p = grid_probabilities(n)
    q = model.latent_quantiles(p)
    if q is not None:
        return q.double().cpu().numpy(), "quantiles of the prior"
    return np.quantile(codes(), p.numpy(), axis=0), "quantiles of the aggregate posterior"


class RunView:
    """A trained run, its test split and the arrays the plots need."""

    epoch: int | None = None  # the kept epoch whose weights are drawn; None: the run's model.safetensors
    suffix = ""  # of the file names: "-epoch-NNN" for a kept epoch

    def __init__(self, run: str | Path, device: str = "cpu", data: ImageData | None = None, epoch: int | None = None):
        self.run = Path(run)
        self.config = loading.load_config(self.run)
        weights = RunFolder(self.run).weights_for(epoch)  # refuses an epoch that was not kept
        self.data = data if data is not None else kept_data.run_data(self.run, self.config)
        self.device = resolve_device(device)
        _, self.model = loading.load_model(self.run, self.data.shape, self.device, weights)
        self.epoch, self.suffix = epoch, "" if epoch is None else f"-epoch-{epoch:03d}"
        self.hw = None if is_corpus(self.data) else image_shape(self.data.shape)  # word counts are never pictures
        self.x = inputs.eval_inputs(self.config, self.data, "test", self.device)
        self.y = self.data.y_test
        self.out = RunFolder(self.run).plots
        if self.out.exists() and not self.out.is_dir():
            raise VaelabError(f"{self.out} is a file; plots go into a folder of that name")
        self.notes: list[str] = []  # what a plot left out for want of test examples, said after drawing it

    def _path(self, kind: str, ext: str = "png") -> Path:
        return self.out / f"{kind}{self.suffix}.{ext}"

    def _need_images(self, kind: str) -> tuple[int, ...]:
        if self.hw is None:
            what = "documents (word counts)" if is_corpus(self.data) else f"examples of shape {self.data.shape}"
            raise VaelabError(f"plot kind {kind} draws images, but {what} are not images")
        return self.hw

    def _need_prior(self, kind: str) -> None:
        if not (is_latent_variable(self.model) or is_exact(self.model)):
            raise VaelabError(f"plot kind {kind} needs a prior p(z); a plain autoencoder has none")

    @torch.no_grad()
    def codes(self) -> np.ndarray:
        """Posterior means (or AE codes) of the test split, (N, Dz)."""
        return torch.cat([self.model.embed(self.x[i:i + 2048]) for i in range(0, len(self.x), 2048)]).cpu().numpy()

    def curves(self) -> Path:
        rows = RunFolder(self.run).read_metrics()
        if not rows:
            raise VaelabError(f"{self.run}: no epochs in metrics.jsonl yet")
        if self.epoch is not None:
            raise VaelabError("plot kind curves draws every epoch's metrics; epoch does not apply to it")
        return plots.curves(rows, self.out / "curves.png")

    @torch.no_grad()
    def recon(self, n: int = 16) -> Path:
        hw = self._need_images("recon")
        # the data row is the grey image (the Bernoulli mean a binarization is drawn from), not one speckled draw;
        # the model reads the seeded binarization it is scored on
        grey = stored_rows(self.data.test[:n], None, self.data.scale)[:, :self.data.dim]  # (a label after it: cut)
        if getattr(self.model, "label_conditional", False):  # decoded with each image's own label
            xr = self.model.reconstruct(self.x[:n])
        else:
            xr = mean_image(self.model.decode(self.model.embed(self.x[:n])))
        return plots.recon(_pictures(grey, hw), _pictures(xr, hw), self._path("recon"), n=n)

    @torch.no_grad()
    def samples(self) -> Path:
        hw = self._need_images("samples")
        self._need_prior("samples")
        g = torch.Generator().manual_seed(PLOT_SEED)
        if getattr(self.model, "label_conditional", False):
            return self._samples_per_class(hw, g)
        x = self.model.sample(64, g).clamp(0.0, 1.0)  # z from the model's own prior; or x pixel by pixel
        title = "samples, drawn pixel by pixel" if is_exact(self.model) else "samples from the prior"
        return plots.samples(_pictures(x, hw), self._path("samples"), title=title)

    def _samples_per_class(self, hw: tuple[int, ...], g: torch.Generator, per_class: int = 8) -> Path:
        """A conditional model's samples, one row per class y: the means of p(x | z, y), z ~ p(z)."""
        k = self.model.classes
        y = torch.arange(k).repeat_interleave(per_class)  # (K * per_class,) class numbers, row by row
        x = self.model.sample(len(y), g, y=y).clamp(0.0, 1.0)
        names = label_names(self.data) or tuple(str(i) for i in range(k))
        return plots.image_grid(_pictures(x, hw), self._path("samples"), nrow=per_class,
                                title="samples per class, p(x | z, y) with z ~ p(z)",
                                row_labels=[f"y = {printable(names[i]) if i < len(names) else i}" for i in range(k)])

    def _class(self, kind: str, y: int | None) -> tuple[torch.Tensor | None, str]:
        """A conditional model's one-hot label (1, K) for class y (default 0) and its name for a title; (None, '')
        for any other model, which refuses a class."""
        if not getattr(self.model, "label_conditional", False):
            if y is not None:
                raise VaelabError(f"plot kind {kind} takes a class only for a conditional model (conditional = true)")
            return None, ""
        k = self.model.classes
        y = 0 if y is None else y
        if not 0 <= y < k:
            raise VaelabError(f"class must be one of this model's classes, 0 to {k - 1}, not {y}")
        names = label_names(self.data) or ()
        name = printable(str(names[y])) if y < len(names) else str(y)
        return torch.eye(k, device=self.device)[y:y + 1], f", given y = {name}"

    def _of_class(self, kind: str, hot: torch.Tensor | None) -> torch.Tensor:
        """Indices of the test examples a plot may draw: all of them, or a conditional model's class `hot` (1, K)
        only (read from the one-hot label each row carries after the image), (N',)."""
        every = torch.arange(len(self.x), device=self.device)
        if hot is None:
            return every
        y = int(hot.argmax())
        mine = every[self.x[:, self.data.dim:].argmax(1) == y]
        if len(mine) == 0:
            raise VaelabError(f"plot kind {kind} of class {y} needs test examples of that class; the test split has "
                              f"none")
        return mine

    def _decode_mean(self, z: torch.Tensor, hot: torch.Tensor | None) -> torch.Tensor:
        """The decoder's means at z (..., Dz), given the class `hot` (1, K) for a conditional model, (..., D)."""
        return mean_image(self.model.decode(z) if hot is None else self.model.decode(z, hot))

    def labels(self) -> np.ndarray | None:
        """The test labels, as class names where the data has them (the legend shows 'sport', not 3)."""
        labels = self.y.numpy() if self.y is not None else None
        names = getattr(self.data, "label_names", None)
        return np.asarray(names)[labels] if labels is not None and names is not None else labels

    def latent(self) -> Path:
        z, labels = self.codes(), self.labels()
        if z.shape[1] == 1:
            z = np.concatenate([z, np.zeros_like(z)], axis=1)
            names = ("z1", "")
        elif z.shape[1] > 2 and len(z) >= 2:
            pca = PCA(2).fit(z)
            z = pca.transform(z)
            ev = pca.explained_variance_ratio_
            names = (f"PC1 ({ev[0]:.0%} of variance)", f"PC2 ({ev[1]:.0%})")
        else:  # two dims, or one test point (no principal directions): its first two coordinates
            z = z[:, :2]
            names = ("z1", "z2")
            if self.model.latent_dim > 2:
                self.notes.append(f"latent: {len(z)} test point, so z1 and z2 instead of a PCA projection")
        pca_used = self.model.latent_dim > 2 and names[0] != "z1"
        title = f"test posterior means ({self.model.latent_dim}-D latent" + (", PCA to 2-D)" if pca_used else ")")
        title += f", epoch {self.epoch}" if self.epoch is not None else ""
        return plots.latent(z, labels, self._path("latent"), title=title, xlabel=names[0], ylabel=names[1])

    @torch.no_grad()
    def latent_epochs(self) -> Path:
        """The test split's posterior means at every kept epoch, animated (plots/latent-epochs.gif)."""
        folder = RunFolder(self.run)
        epochs = animation.frames(folder.kept_epochs())
        if not epochs:
            raise VaelabError(f"plot kind latent-epochs needs weights kept during training; {self.run} has none "
                              f"(train with save_every = N)")
        codes = []
        for e in epochs:
            _, model = loading.load_model(self.run, self.data.shape, self.device, epoch_weights(e))
            codes.append(
                torch.cat([model.embed(self.x[i:i + 2048]) for i in range(0, len(self.x), 2048)]).cpu().numpy()
            )
        z, names = animation.project(codes)
        return animation.latent_gif(z, self.labels(), self.out / "latent-epochs.gif", epochs=epochs,
                                    title=f"test posterior means ({self.model.latent_dim}-D latent)", names=names)

    @torch.no_grad()
    def manifold(self, n: int = 21, span: tuple[float, float, float, float] | None = None,
                 y: int | None = None) -> Path:
        """The decoder's means on a grid of the latent (or its PCA plane); a conditional model's (Sohn et al. 2015)
        p(x | z, y) for one class y (default 0, named in the title)."""
        hw = self._need_images("manifold")
        hot, given = self._class("manifold", y)  # (1, K) or None
        self._need_prior("manifold")
        d = self.model.latent_dim
        if d < 2:
            raise VaelabError("plot kind manifold needs a latent with at least 2 dimensions")
        labels = ("z1", "z2")
        if d == 2:
            quantiles, how = grid_quantiles(self.model, n, self.codes) if span is None else (None, "")
            gx, gy = manifold_grid(n, span, quantiles=quantiles)
            title = "2-D latent manifold"
        else:
            # More than two dims: walk the plane of the two main directions of the posterior means,
            # through their centre, in units of their spread (Gaussian quantiles of that spread).
            gx, gy = manifold_grid(n, span)
            how = "Gaussian quantile grid"
            codes = self.codes()
            if len(codes) < 2:
                raise VaelabError(f"plot kind manifold of a {d}-D latent needs 2 test points for its PCA plane, "
                                  f"found {len(codes)}")
            pca = PCA(2).fit(codes)
            std = np.sqrt(pca.explained_variance_)
            title = f"manifold on the top-2 PCA plane of a {d}-D latent"
            labels = ("PC1 (in std of the posterior means)", "PC2 (in std)")
        xx, yy = np.meshgrid(gx, gy[::-1])  # row 0 = highest z2, so the picture reads like a plot
        grid = np.stack([xx.ravel(), yy.ravel()], 1)  # (n*n, 2)
        z = grid if d == 2 else pca.mean_ + (grid * std) @ pca.components_
        title += (f" ({how})" if span is None else " (linear grid)") + given
        zt = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        images = _pictures(mean_image(self.model.decode(zt) if hot is None else self.model.decode(zt, hot)), hw)
        return plots.manifold(images, self._path("manifold"), n=n, ticks_x=gx, ticks_y=gy, title=title,
                              xlabel=labels[0], ylabel=labels[1])

    @torch.no_grad()
    def interp(self, rows: int = 6, steps: int = 10, y: int | None = None) -> Path:
        """Decoded straight lines between the posterior means of pairs of test images; a conditional model's
        (Sohn et al. 2015) between two images of one class y (default 0), decoded with that class's label."""
        hw = self._need_images("interp")
        hot, given = self._class("interp", y)  # (1, K) or None
        among = self._of_class("interp", hot)  # (N',) the test examples the pairs come from
        if len(among) < 2:
            raise VaelabError(f"plot kind interp needs 2 test examples{given.replace(', given', ' of')}, "
                              f"found {len(among)}")
        if len(among) < 2 * rows:  # draw the pairs there are
            self.notes.append(f"interp: {len(among)} test examples, so {len(among) // 2} rows, fewer than {rows}")
            rows = len(among) // 2
        g = torch.Generator().manual_seed(PLOT_SEED)
        pick = among[torch.randperm(len(among), generator=g)[: 2 * rows].to(self.device)]
        z = self.model.embed(self.x[pick]).reshape(rows, 2, -1)
        t = torch.linspace(0, 1, steps, device=self.device)[None, :, None]
        path = z[:, :1] * (1 - t) + z[:, 1:] * t  # (rows, steps, Dz)
        ends = self.x[pick, :self.data.dim].reshape(rows, 2, -1)  # the images (a conditional row's label cut)
        # data | decoded path | data, so each row shows where it starts and ends
        row = torch.cat([ends[:, :1], self._decode_mean(path, hot), ends[:, 1:]], 1)
        images = _pictures(row, hw).reshape(rows, steps + 2, *hw)
        return plots.interpolation(images, self._path("interp"), title=given)

    @torch.no_grad()
    def traversal(self, steps: int = 9, most: int = 16, y: int | None = None) -> Path:
        """Each latent dimension (the `most` with the largest spread of posterior means, in dimension order)
        swept over the prior's quantiles at grid_probabilities(steps), the others held at the posterior mean of
        one test image (the aggregate posterior's quantiles where the prior has no inverse CDF); a conditional
        model's from a test image of class y (default 0), decoded with that class's label."""
        hw = self._need_images("traversal")
        hot, given = self._class("traversal", y)  # (1, K) or None
        self._need_prior("traversal")
        if len(self.x) < 1:
            raise VaelabError("plot kind traversal needs a test example")
        among = self._of_class("traversal", hot)
        quantiles, how = grid_quantiles(self.model, steps, self.codes)  # (steps, Dz)
        d = quantiles.shape[1]
        dims = list(range(d))
        if d > most:  # the widest-spread dimensions: the ones the code uses
            dims = sorted(np.argsort(-self.codes().std(0))[:most].tolist())
            self.notes.append(f"traversal: the {most} of {d} latent dimensions whose posterior means vary most")
        g = torch.Generator().manual_seed(PLOT_SEED)
        pick = int(among[int(torch.randint(len(among), (1,), generator=g))])
        base = self.model.embed(self.x[pick:pick + 1])  # (1, Dz)
        z = base.repeat(len(dims), steps, 1)  # (rows, steps, Dz)
        values = torch.as_tensor(quantiles[:, dims].T, dtype=z.dtype, device=z.device)  # (rows, steps)
        for row, j in enumerate(dims):
            z[row, :, j] = values[row]
        decoded = self._decode_mean(z, hot)  # (rows, steps, D)
        data = self.x[pick:pick + 1, :self.data.dim].expand(len(dims), 1, -1)
        images = _pictures(torch.cat([data, decoded], 1), hw).reshape(len(dims), steps + 1, *hw)
        title = f"latent traversals ({how}, others at a test image's posterior mean{given})"
        return plots.traversal(images, self._path("traversal"), values=values.cpu().numpy(), dims=dims, title=title)

    def topic_table(self, top: int = 10) -> list[dict]:
        """scores.topic_table for this run; a VaelabError for models that are not document models."""
        need_count("top", top)
        if not hasattr(self.model, "topic_weights") or not is_corpus(self.data):
            raise VaelabError(f"topics need a document model (nvdm, prodlda, etm) trained on a corpus; {self.run} is "
                              f"{self.config.model} on {self.config.data}")
        return scores.topic_table(self.model, self.data, top, self.device)

    def topics(self, top: int = 10) -> Path:
        table = self.topic_table(top)
        if table and "share" in table[0]:  # a topic model: one end per topic
            rows = [(f"topic {r['dim']} ({100 * r['share']:.1f}%)", r["plus"], r["minus"]) for r in table]
            title = f"top {top} words of each topic (largest share of the training documents first)"
        else:
            rows = [(f"z{r['dim']} (sd {r['sd']:.2f})", r["plus"], r["minus"]) for r in table]
            title = f"top {top} words at each end of R's columns (most varying dimension first)"
        return plots.topics(rows, self._path("topics"), title=title)

    def kinds(self) -> tuple[str, ...]:
        """The plot kinds worth trying for this run: pictures for images, topic words for documents."""
        kept = bool(RunFolder(self.run).kept_epochs()) and self.epoch is None
        if is_corpus(self.data):
            return tuple(k for k in KINDS if k in ("curves", "latent", "topics") or (k == "latent-epochs" and kept))
        if is_exact(self.model):  # no latent: no codes, reconstructions, manifold or interpolation
            return ("curves", "samples")
        return tuple(k for k in KINDS if k != "topics" and (k != "latent-epochs" or kept))

    def make(self, kind: str, **kw) -> Path:
        if kind not in KINDS:
            raise VaelabError(unknown("plot kind", kind, KINDS))
        return KINDS[kind](self, **kw)


# the plot kinds, name -> the RunView method that draws it; `vaelab plot --kind`'s list (config/choices.py reads the
# keys), in the order `--kind all` and the report draw them: a new kind is its method and one entry here
KINDS: dict[str, Callable[..., Path]] = {
    "curves": RunView.curves,
    "recon": RunView.recon,
    "samples": RunView.samples,
    "latent": RunView.latent,
    "manifold": RunView.manifold,
    "interp": RunView.interp,
    "topics": RunView.topics,
    "latent-epochs": RunView.latent_epochs,
    "traversal": RunView.traversal,
}


def all_plots(run: str | Path, device: str = "cpu", data: ImageData | None = None, log=info) -> list[Path]:
    """Every plot that makes sense for this run (skipping, with a note, those that do not)."""
    view = RunView(run, device, data)
    made = []
    for kind in view.kinds():
        try:
            made.append(view.make(kind))
        except VaelabError as e:
            log(f"skipped {kind}: {e}")
        for note in view.notes:
            log(f"note: {note}")
        view.notes.clear()
    return made
