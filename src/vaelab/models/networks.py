"""Plain nn.Modules that map tensors to raw distribution parameters. No probability here.

All networks take and return flat feature vectors with any number of leading dimensions,
so a decoder can be fed z of shape (K, B, Dz) and return (K, B, D).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..runtime import parallel, split_noise


class MLP(nn.Sequential):
    """Linear layers with ReLU between them and none after the last: in -> hidden... -> out."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int):
        sizes = [d_in, *hidden, d_out]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)


def check_conv_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"the conv networks need (C, H, W) images with H and W divisible by 4, got {shape}")
    return shape  # type: ignore[return-value]


class ConvEncoder(nn.Module):
    """Seed 002's encoder: two stride-2 3x3 convolutions (32, 64 filters), then a dense layer."""

    def __init__(self, shape: tuple[int, ...], d_out: int):
        super().__init__()
        c, h, w = check_conv_shape(shape)
        self.shape = (c, h, w)
        # padding=1 makes each stride-2 conv halve H and W exactly: H -> H/2 -> H/4
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(64 * (h // 4) * (w // 4), d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self.body(x.reshape(-1, *self.shape))  # (N, C, H, W) -> (N, 64*H/4*W/4)
        return self.head(y).reshape(*lead, -1)


class LabelledConvEncoder(ConvEncoder):
    """ConvEncoder for a conditional model: the convolutions read the image x, the dense head [features, y].

    Input [x, onehot(y)] (..., D + K), x the image's D = C*H*W values; output (..., d_out).
    """

    def __init__(self, shape: tuple[int, ...], classes: int, d_out: int):
        super().__init__(shape, d_out)
        self.classes = classes
        self.head = nn.Linear(self.head.in_features + classes, d_out)

    def forward(self, xy: torch.Tensor) -> torch.Tensor:
        lead, d = xy.shape[:-1], math.prod(self.shape)
        h = self.body(xy[..., :d].reshape(-1, *self.shape))  # (N, 64*H/4*W/4)
        return self.head(torch.cat([h, xy[..., d:].reshape(-1, self.classes)], -1)).reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """Seed 002's decoder: dense to 32 x H/4 x W/4, transposed convs 64 and 32 (stride 2), then 1x... to C."""

    def __init__(self, d_in: int, shape: tuple[int, ...]):
        super().__init__()
        c, h, w = check_conv_shape(shape)
        self.start = (32, h // 4, w // 4)
        self.dense = nn.Sequential(nn.Linear(d_in, math.prod(self.start)), nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(32, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 3, stride=1, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        y = self.dense(z.reshape(-1, z.shape[-1])).reshape(-1, *self.start)
        return self.body(y).reshape(*lead, -1)  # (..., C*H*W) logits or means


class BagEncoder(MLP):
    """An MLP on log(1 + n) of word counts n (..., |V|).

    Raw counts of long documents put large, heavy-tailed values into the first layer; log(1 + n)
    keeps which words occur and roughly how often (on BBC News it gave a ~5% lower perplexity).
    """

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.log1p(counts))


class ShiftedBatchNorm(nn.Module):
    """Batch normalisation without a learned scale, then a learned shift
    (the ProdLDA code's BN; Srivastava & Sutton 2017).

    Normalises the last dimension over all leading ones. A training batch of one row uses the running
    statistics (one row has no variance). In eval mode it is a fixed affine map, so bounds do not depend on the batch.
    When processes each hold a slice of the batch (torchrun; runtime/split_noise.py), the mean and variance are
    the whole batch's, summed over the processes, as are their gradients: N processes normalise like one.
    """

    def __init__(self, n: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(n, affine=False)
        self.shift = nn.Parameter(torch.zeros(n))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(-1, h.shape[-1])  # (N, n)
        if self.training and split_noise.split() is not None:
            flat = self._whole_batch(flat)
        elif self.training and flat.shape[0] == 1:
            flat = nn.functional.batch_norm(flat, self.norm.running_mean, self.norm.running_var, training=False)
        else:
            flat = self.norm(flat)
        return flat.reshape(h.shape) + self.shift

    def _whole_batch(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, n) rows normalised by the moments of every process's rows (two passes, like the one-process kernel);
        the running statistics move as one process's would (the unbiased variance, momentum)."""
        count = float(parallel.summed(torch.tensor([float(flat.shape[0])], device=flat.device)))
        mean = parallel.summed(flat.sum(0)) / count  # (n,)
        centred = flat - mean  # (N, n)
        var = parallel.summed(centred.square().sum(0)) / count  # (n,) biased, as batch norm normalises
        norm, m = self.norm, self.norm.momentum
        with torch.no_grad():
            norm.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            norm.running_var.mul_(1 - m).add_(var.detach() * (count / max(count - 1, 1)), alpha=m)
            norm.num_batches_tracked.add_(1)
        return centred * torch.rsqrt(var + norm.eps)


class BatchDropout(nn.Dropout):
    """nn.Dropout on (..., B, F) rows whose mask does not depend on how the batch is split over processes
    (split_noise.dropout: the same numbers as nn.Dropout in one process)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_noise.dropout(x, self.p, self.training)


class TopicEncoder(nn.Module):
    """ProdLDA's inference network: counts -> softplus MLP -> dropout -> (mu, log sigma^2), each batch-normalised.

    Returns raw (..., 2K) parameters (distributions.gaussian_posterior reads them); batch_norm=False drops the BN
    layers (the ablation of docs/RESULTS.md).
    """

    def __init__(self, vocab: int, hidden: tuple[int, ...], k: int, dropout: float, batch_norm: bool = True):
        super().__init__()
        sizes, layers = [vocab, *hidden], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Softplus()]
        self.body = nn.Sequential(*layers, BatchDropout(dropout))
        self.mean, self.logvar = nn.Linear(sizes[-1], k), nn.Linear(sizes[-1], k)
        self.mean_bn = ShiftedBatchNorm(k) if batch_norm else nn.Identity()
        self.logvar_bn = ShiftedBatchNorm(k) if batch_norm else nn.Identity()

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        h = self.body(torch.log1p(counts))  # (..., H); log(1 + n) as BagEncoder
        return torch.cat([self.mean_bn(self.mean(h)), self.logvar_bn(self.logvar(h))], -1)  # (..., 2K)


class Proportions(nn.Module):
    """theta = softmax(z) over the K topics, then dropout (on theta, as in ProdLDA and the ETM's code)."""

    def __init__(self, dropout: float):
        super().__init__()
        self.drop = BatchDropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.drop(z.softmax(-1))  # (..., K)


class ProductOfExperts(nn.Module):
    """ProdLDA's decoder: word logits BN(beta theta) + b, beta (|V|, K) unnormalised topic-word weights.

    p(w | theta) = softmax(beta theta + b): a product of experts, where LDA mixes softmax(beta_k).
    """

    def __init__(self, k: int, vocab: int, batch_norm: bool = True):
        super().__init__()
        self.beta = nn.Linear(k, vocab, bias=False)
        self.norm = ShiftedBatchNorm(vocab) if batch_norm else None
        self.bias = nn.Parameter(torch.zeros(vocab)) if not batch_norm else None

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        h = self.beta(theta)  # (..., |V|)
        return self.norm(h) if self.norm is not None else h + self.bias


class EmbeddedTopics(nn.Module):
    """The ETM's decoder: beta_k = softmax_w(rho_w . alpha_k), word log-probabilities log(theta^T beta)
    (Dieng et al. 2020).

    rho (|V|, L) word embeddings, learned or fixed (loaded: a buffer); alpha (K, L) topic embeddings.
    """

    def __init__(self, k: int, vocab: int, dim: int, fixed_words: bool = False):
        super().__init__()
        rho = torch.randn(vocab, dim) / math.sqrt(dim)
        if fixed_words:
            self.register_buffer("rho", rho)
        else:
            self.rho = nn.Parameter(rho)
        self.alpha = nn.Linear(dim, k, bias=False)  # weight (K, L)

    def topic_log_probs(self) -> torch.Tensor:
        """log beta, (K, |V|): each row a distribution over the vocabulary."""
        return self.alpha(self.rho).T.log_softmax(-1)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        # log sum_k theta_k beta_kw, (..., |V|); BagOfWords normalises it (dropout leaves theta summing to ~1)
        return (theta @ self.topic_log_probs().exp()).clamp_min(1e-30).log()


class JointMLP(nn.Module):
    """An MLP on two inputs joined, a (..., Da) and b (..., Db), without materialising their concatenation.

    The first layer is La(a) + Lb(b) (one bias), so a (B, Da) broadcasts against b (K, B, Db): the
    hierarchical posterior q(z1 | x, z2) reads x once per example and z2 once per sample.
    With no hidden layers it is that sum alone (a linear map), as the linear-Gaussian tests need.
    """

    def __init__(self, d_a: int, d_b: int, hidden: tuple[int, ...], d_out: int):
        super().__init__()
        width = hidden[0] if hidden else d_out
        self.a, self.b = nn.Linear(d_a, width), nn.Linear(d_b, width, bias=False)
        self.rest = MLP(width, tuple(hidden[1:]), d_out) if hidden else None

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = self.a(a) + self.b(b)  # (..., width), broadcast over the sample dimension
        return h if self.rest is None else self.rest(torch.relu(h))
