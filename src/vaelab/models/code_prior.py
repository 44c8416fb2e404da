"""A PixelCNN prior over a trained VQ-VAE's code grid (van den Oord et al. 2017, section 3.2), and the bound it gives.

The VQ-VAE (models/vqvae.py) is frozen; its deterministic encoder gives every x one code grid z_q(x) (h, w).
The prior is the project's Gated PixelCNN (models/pixel/layers.py) over that grid in raster order, reading each
code's learned embedding and returning a categorical over the K codes per position:
    log p(z_q) = sum_ij log p(k_ij | k_<ij)
Taken as a latent-variable model whose posterior q(z|x) is the point mass on z_q(x), log q = 0 and
    log p(x) >= E_q[log p(x|z) + log p(z) - log q(z|x)] = log p(x | z_q) + log p(z_q)     ("VQ bound")
so the generic estimators score it unchanged: the ELBO is the VQ bound, and IWAE-k equals it for every k (all k
draws of a point mass are the same grid: evaluate it with eval_k = 1). Training differentiates that bound, whose
only trainable part is log p(z_q): the prior is fitted by maximum likelihood on the training split's codes.
Sampling draws a grid from the prior code by code and decodes it with the VQ-VAE's decoder.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

from ..config import schema as cfg
from ..errors import CheckpointError, ConfigError, VaelabError
from ..runs.checkpoint import load_weights
from ..runs.folder import WEIGHTS, RunFolder
from . import vqvae
from .contract import LatentVariableModel
from .pixel.layers import GatedPixelCNN

EMBED = 16  # width of each code's embedding, the PixelCNN's input channels


class CodePixelCNN(nn.Module):
    """codes (N, h, w) long -> logits (N, K, h, w); the logits at (i, j) read only the codes before (i, j)."""

    def __init__(self, size: int, grid: tuple[int, int], *, channels: int, layers: int, kernel: int):
        super().__init__()
        self.size, self.grid = size, grid
        self.embed = nn.Embedding(size, EMBED)
        self.net = GatedPixelCNN(channels, layers, kernel, size, in_channels=EMBED)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embed(codes).permute(0, 3, 1, 2))

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(codes) = sum over positions of log p(k_ij | k_<ij), (N, h, w) -> (N,)."""
        logp = F.log_softmax(self(codes).float(), 1)  # (N, K, h, w)
        return logp.gather(1, codes[:, None]).sum((1, 2, 3))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n grids drawn position by position in raster order, (n, h, w) long."""
        device = self.embed.weight.device
        codes = torch.zeros(n, *self.grid, dtype=torch.long, device=device)
        for i in range(self.grid[0]):
            for j in range(self.grid[1]):
                p = F.softmax(self(codes)[:, :, i, j].float(), 1)  # (n, K)
                codes[:, i, j] = torch.multinomial(p, 1, generator=generator)[:, 0]
        return codes


class CodeGridPrior(Distribution):
    """p(z) over code grids given flat, as floats (..., h*w) (what z is for the estimators)."""

    arg_constraints: dict = {}
    support = constraints.nonnegative_integer

    def __init__(self, net: CodePixelCNN):
        self.net = net
        super().__init__(torch.Size(), torch.Size((math.prod(net.grid),)), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        lead = value.shape[:-1]
        codes = value.reshape(-1, *self.net.grid).long()
        return self.net.log_prob(codes).reshape(lead)

    def sample(self, sample_shape: torch.Size = torch.Size(), generator: torch.Generator | None = None
               ) -> torch.Tensor:
        n = math.prod(sample_shape)
        return self.net.sample(n, generator).reshape(*sample_shape, -1).float()


class PointCodes(Distribution):
    """The point mass q(z|x) on the encoder's code grid, z (B, h*w) as floats; log q = 0 at z_q(x)."""

    arg_constraints: dict = {}
    support = constraints.nonnegative_integer

    def __init__(self, codes: torch.Tensor):
        self.codes = codes.flatten(1).float()  # (B, h*w)
        super().__init__(self.codes.shape[:1], self.codes.shape[1:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.codes

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        hit = (value == self.codes).all(-1)
        return torch.where(hit, 0.0, -math.inf)


class CodePrior(LatentVariableModel):
    """A frozen VQ-VAE with a PixelCNN prior over its codes: log p(x, z) = log p(x | z_q) + log p(z_q)."""

    def __init__(self, vq: vqvae.VQVAE, prior: CodePixelCNN):
        super().__init__()
        self.vq, self.code_prior = vq, prior
        self.vq.requires_grad_(False)
        self.vq.eval()
        self.data_dim, self.latent_dim, self.grid = vq.data_dim, math.prod(vq.grid), vq.grid
        self.activation_width = 2 * prior.net.layers[0].h_out.out_channels * self.latent_dim + vq.data_dim

    def train(self, mode: bool = True) -> "CodePrior":
        super().train(mode)
        self.vq.eval()  # frozen: its codebook never moves
        return self

    def encode(self, x: torch.Tensor) -> PointCodes:
        return PointCodes(self.vq.codes(x))

    def posterior_sample(self, x: torch.Tensor, k: int, q: Distribution | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """k copies of z_q(x) and log q = 0: (K, B, h*w), (K, B). Nothing is drawn."""
        q = self.encode(x) if q is None else q
        z = q.mean.expand(k, *q.mean.shape)
        return z, torch.zeros(z.shape[:2], device=z.device)

    def _codes(self, z: torch.Tensor) -> torch.Tensor:
        """Flat grids z (..., h*w) of code indices as floats -> (..., h, w) long; anything else is refused."""
        if not bool(((z == z.round()) & (z >= 0) & (z < self.code_prior.size)).all()):
            raise VaelabError("the code prior's z is a grid of code indices; points between codes (a manifold, an "
                              "interpolation) decode to nothing")
        return z.long().reshape(*z.shape[:-1], *self.grid)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x | z_q) for grids z (..., h*w), the VQ-VAE's decoder."""
        return self.vq.decode_codes(self._codes(z))

    def prior(self) -> CodeGridPrior:
        return CodeGridPrior(self.code_prior)

    def analytic_kl(self, q: Distribution) -> None:
        return None  # KL(delta || p) = -log p(z_q): the estimators take it by their (exact) Monte Carlo

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.code_prior.sample(n, generator).flatten(1).float()

    def latent_quantiles(self, p: torch.Tensor) -> None:
        return None

    @torch.no_grad()
    def evaluation_terms(self, x: torch.Tensor, batch: int = 1024) -> dict:
        """The VQ bound's two terms apart, the VQ-VAE's codebook use (read by estimators.evaluation.summarize)."""
        self.eval()
        recon, prior = [], []
        for i in range(0, len(x), batch):
            codes = self.vq.codes(x[i:i + batch])
            recon.append(self.vq.decode_codes(codes).log_prob(x[i:i + batch]).double().cpu())
            prior.append(self.code_prior.log_prob(codes).double().cpu())
        terms = self.vq.evaluation_terms(x, batch)
        how = "z_q the VQ-VAE's deterministic encoder codes"
        return terms | {"vq_recon": float(torch.cat(recon).mean()), "vq_prior": float(torch.cat(prior).mean()),
                        "estimators": terms["estimators"] | {
            "vq_recon": f"log p(x | z_q), {how}", "vq_prior": f"log p(z_q) under the PixelCNN code prior, {how}",
            "elbo": "VQ bound: log p(x | z_q) + log p(z_q), the ELBO of a point-mass q over the codes",
            "iwae": "VQ bound again: every draw of a point-mass q is the same grid, so IWAE-k equals the ELBO",
            "nll": "-(VQ bound): an upper bound on -log p(x)", "kl": "-log p(z_q): KL(point mass || p(z))"}}


def _vq_config(c: cfg.Config) -> tuple[Path, cfg.Config]:
    """The vqvae run folder named by c.codes and its config, refused unless it is one trained on c's data."""
    if not c.codes:
        raise ConfigError("model code-prior needs codes = the folder of a trained vqvae run")
    run = Path(c.codes)
    folder = RunFolder(run)
    if not folder.is_run() or not (run / WEIGHTS).is_file():
        raise ConfigError(f"codes {c.codes!r}: not a trained run folder (no {folder.path.name}/{WEIGHTS})")
    vc = folder.read_config()
    if vc.model != "vqvae":
        raise ConfigError(f"codes {c.codes!r} is a {vc.model} run; the code prior needs a vqvae run")
    differ = [k for k in ("data", "data_dir", "likelihood", "binarize", "image_size", "val_fraction")
              if getattr(vc, k) != getattr(c, k)]
    if differ:
        was = ", ".join(f"{k} = {getattr(vc, k)!r}" for k in differ)
        raise ConfigError(f"codes {c.codes!r} was trained with {was}; train the code prior on the same data "
                          f"({', '.join(differ)})")
    return run, vc


def build(c: cfg.Config, shape: tuple[int, ...]) -> CodePrior:
    """The registry's builder: the vqvae run's architecture (weights: load_codes) and a fresh PixelCNN prior."""
    run, vc = _vq_config(c)
    vq = vqvae.build(vc, shape)
    model = CodePrior(vq, CodePixelCNN(vc.codebook_size, vq.grid, channels=c.pixel_channels, layers=c.pixel_layers,
                                      kernel=c.pixel_kernel))
    model.codes_run = str(run)  # where load_codes finds the weights
    return model


def load_codes(model: CodePrior, data: object) -> None:
    """ModelSpec.init: the trained VQ-VAE's weights from its run folder, before training starts."""
    try:
        load_weights(Path(model.codes_run) / WEIGHTS, model.vq)  # names, shapes, finite values checked first
    except CheckpointError as e:
        raise ConfigError(f"codes {model.codes_run!r}: cannot load its weights ({e})") from None

