"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning"): a conv encoder to a grid of
vectors, each replaced by its nearest codebook vector, and a conv decoder p(x | z_q).

    z_e = f(x)                     (B, C, h, w), h = H/4, w = W/4
    k_ij = argmin_k ||z_e,ij - e_k||^2,   z_q,ij = e_{k_ij}    the codebook e (K, C)
    straight-through (section 3.1): the decoder reads z_e + sg(z_q - z_e), so d z_q / d z_e = identity
    loss = -log p(x | z_q) + beta sum_ij ||z_e,ij - sg(z_q,ij)||^2       (eq. 3's commitment term, beta = 0.25)
The codebook is not trained by gradients but by exponential moving averages (the paper's appendix A.1):
    N_k <- d N_k + (1 - d) n_k,   m_k <- d m_k + (1 - d) sum_{ij: k_ij = k} z_e,ij,   e_k = m_k / N~_k
with n_k the batch's count of code k and N~_k the Laplace-smoothed count (eps = 1e-5), updated in the training
step (model.train()); a code whose N_k falls below `restart` is moved to a random encoder output of the batch
(Dhariwal et al. 2020, Jukebox), so dead codes come back. The statistics are buffers, so checkpoints keep them.

A VQ-VAE alone has no likelihood bound: its uniform prior over codes is never fitted, and log p(x | z_q) is a
reconstruction score (it is scored like the autoencoders: `recon`, not a bound). models/code_prior.py fits a
PixelCNN prior over the code grid, which gives the bound log p(x) >= log p(x | z_q) + log p(z_q).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution

from ..config.schema import Config
from ..distributions import densities as dist
from ..errors import ConfigError
from .contract import reconstruct
from .networks import check_conv_shape

EPS = 1e-5  # Laplace smoothing of the EMA counts (Sonnet's VectorQuantizerEMA)


class Quantized(NamedTuple):
    z: torch.Tensor  # (B, C, h, w) straight-through z_q: z_q's values, the identity's gradient to z_e
    codes: torch.Tensor  # (B, h, w) long, the nearest code of every position
    commitment: torch.Tensor  # (B,) sum over positions of ||z_e - sg(z_q)||^2


def nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row (squared Euclidean distance) of every row of z: (N, C), (K, C) -> (N,).

    Always in float32, also under bf16 autocast: bf16 distances would pick other codes near the boundaries."""
    with torch.autocast(z.device.type, enabled=False):
        z, codebook = z.float(), codebook.float()
        d = (z * z).sum(1, keepdim=True) - 2 * z @ codebook.T + (codebook * codebook).sum(1)  # (N, K)
    return d.argmin(1)


class VectorQuantizer(nn.Module):
    """The codebook (K, C) with its EMA statistics; forward quantises (B, C, h, w) and, in training, updates them."""

    def __init__(self, size: int, dim: int, decay: float = 0.99, restart: float = 1.0):
        super().__init__()
        self.size, self.dim, self.decay, self.restart = size, dim, decay, restart
        self.register_buffer("codebook", torch.randn(size, dim))  # e (K, C)
        self.register_buffer("counts", torch.zeros(size))  # N_k (K,)
        self.register_buffer("sums", self.codebook.clone())  # m_k (K, C)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step from encoder outputs flat (N, C) and their codes (N,); then restart the dead codes."""
        onehot = F.one_hot(codes, self.size).to(flat.dtype)  # (N, K)
        self.counts.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        n = self.counts.sum()
        smoothed = (self.counts + EPS) / (n + self.size * EPS) * n  # (K,)
        self.codebook.copy_(self.sums / smoothed[:, None])
        if self.restart > 0:  # always draws K indices, so the random stream moves alike every step
            pick = flat[torch.randint(0, flat.shape[0], (self.size,), device=flat.device)]  # (K, C)
            dead = self.counts < self.restart  # (K,)
            self.codebook.copy_(torch.where(dead[:, None], pick, self.codebook))
            self.sums.copy_(torch.where(dead[:, None], pick * self.restart, self.sums))
            self.counts.copy_(torch.where(dead, torch.full_like(self.counts, self.restart), self.counts))

    def forward(self, z_e: torch.Tensor) -> Quantized:
        b, c, h, w = z_e.shape
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, c)  # (B*h*w, C)
        codes = nearest(flat.detach(), self.codebook)  # (B*h*w,)
        if self.training and torch.is_grad_enabled():  # a training step (validation runs in eval mode)
            self.update(flat.detach(), codes)
        z_q = self.codebook[codes].reshape(b, h, w, c).permute(0, 3, 1, 2)  # (B, C, h, w), after the update
        commitment = ((z_e.float() - z_q) ** 2).sum((1, 2, 3))  # (B,): z_q holds no gradient (a buffer)
        return Quantized(z_e + (z_q - z_e).detach(), codes.reshape(b, h, w), commitment)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """The code vectors of a grid of codes, (..., h, w) -> (..., C, h, w)."""
        return self.codebook[codes].movedim(-1, -3)


class GridEncoder(nn.Sequential):
    """(B, 1, H, W) -> z_e (B, C, H/4, W/4): two stride-2 4x4 convolutions and a 1x1 to the code dimension."""

    def __init__(self, channels: int, dim: int, width: int = 32):
        super().__init__(nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1),
                         nn.ReLU(), nn.Conv2d(2 * width, dim, 1))


class GridDecoder(nn.Sequential):
    """z_q (B, C, h, w) -> logits or means (B, channels, 4h, 4w): a 3x3 conv and two stride-2 transposed convs."""

    def __init__(self, dim: int, channels: int, width: int = 32):
        super().__init__(nn.Conv2d(dim, 2 * width, 3, 1, 1), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
                         nn.ReLU(), nn.ConvTranspose2d(width, channels, 4, 2, 1))


class VQVAE(nn.Module):
    """Encoder, codebook, decoder. embed(x) is z_q flattened (B, C*h*w); decode reads such a flat z_q."""

    def __init__(self, shape: tuple[int, ...], *, size: int, dim: int, commitment: float = 0.25, decay: float = 0.99,
                 restart: float = 1.0, likelihood: str = "bernoulli"):
        super().__init__()
        c, h, w = check_conv_shape(shape)
        self.shape, self.grid = (c, h, w), (h // 4, w // 4)
        self.data_dim, self.latent_dim = c * h * w, dim * math.prod(self.grid)
        self.commitment, self.likelihood = commitment, likelihood
        self.encoder, self.decoder = GridEncoder(c, dim), GridDecoder(dim, c)
        self.quantizer = VectorQuantizer(size, dim, decay, restart)
        self.logvar = nn.Parameter(torch.zeros(self.data_dim)) if likelihood == "gaussian-learned" else None

    def quantize(self, x: torch.Tensor) -> Quantized:
        """x (B, D) -> the straight-through z_q (B, C, h, w), the codes (B, h, w), the commitment (B,)."""
        return self.quantizer(self.encoder(x.reshape(-1, *self.shape)))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of each example, (B, D) -> (B, h, w) long: the deterministic encoder in float32 whatever
        the training precision, so a code prior is fitted on the very codes it is evaluated on."""
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            return nearest(self.encoder(x.reshape(-1, *self.shape)).float().permute(0, 2, 3, 1)
                           .reshape(-1, self.quantizer.dim), self.quantizer.codebook).reshape(-1, *self.grid)

    def decode_grid(self, z_q: torch.Tensor) -> Distribution:
        """p(x | z_q) for z_q (..., C, h, w), batch shape the leading dimensions."""
        lead = z_q.shape[:-3]
        logits = self.decoder(z_q.reshape(-1, *z_q.shape[-3:])).reshape(*lead, self.data_dim)
        return dist.likelihood(self.likelihood, logits.float(), self.logvar)

    def decode_codes(self, codes: torch.Tensor) -> Distribution:
        """p(x | z_q) of a grid of codes (..., h, w)."""
        return self.decode_grid(self.quantizer.lookup(codes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """z_q flattened, (B, C*h*w)."""
        return self.quantize(x).z.flatten(1)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x | z_q) for a flat z_q (..., C*h*w)."""
        return self.decode_grid(z.reshape(*z.shape[:-1], self.quantizer.dim, *self.grid))

    def reconstruct(self, x) -> torch.Tensor:
        """E[x | z_q(x)], shaped like x: (N, D) or (N, H, W), array or tensor."""
        return reconstruct(self, x)

    @torch.no_grad()
    def evaluation_terms(self, x: torch.Tensor, batch: int = 1024) -> dict:
        """Codebook use on x and the squared reconstruction error (read by estimators.evaluation.summarize)."""
        self.eval()
        counts = torch.zeros(self.quantizer.size, dtype=torch.float64)
        sq = []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            codes = self.codes(xb)
            counts += torch.bincount(codes.flatten().cpu(), minlength=self.quantizer.size).double()
            sq.append(((self.decode_codes(codes).mean - xb) ** 2).sum(1).double().cpu())
        return dict(codebook_terms(counts.numpy()), recon_sq_error=float(torch.cat(sq).mean()), estimators={
            "recon": "log p(x | z_q(x)), z_q the nearest codes: a reconstruction score; a VQ-VAE alone has no "
                     "likelihood bound (fit a code-prior on it for one)",
            "recon_sq_error": "sum over pixels of (x - E[x | z_q])^2 per example, z_q the encoder's nearest codes",
            "codebook_used": "codes chosen at least once on the split", "dead_codes": "codes never chosen on the split",
            "codebook_perplexity": "exp(entropy of the codes' frequencies on the split): the effective codebook size"})


def codebook_terms(counts: np.ndarray) -> dict:
    """Usage numbers from the count of each code (K,): used, dead, the used fraction and the perplexity."""
    p = counts / counts.sum()
    nz = p[p > 0]
    used = int((counts > 0).sum())
    return {"codebook_used": used, "dead_codes": int(len(counts) - used), "codebook_usage": used / len(counts),
            "codebook_perplexity": float(np.exp(-(nz * np.log(nz)).sum()))}


def build(c: Config, shape: tuple[int, ...]) -> VQVAE:
    """The registry's builder: a VQ-VAE for (C, H, W) images with H, W divisible by 4."""
    try:
        return VQVAE(tuple(shape), size=c.codebook_size, dim=c.code_dim, commitment=c.commitment,
                     decay=c.codebook_decay, restart=c.codebook_restart, likelihood=c.likelihood)
    except ValueError as e:
        raise ConfigError(f"model vqvae: {e}") from None
