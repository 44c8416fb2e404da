"""Document models: NVDM (Miao et al. 2016, NVDM)."""

from __future__ import annotations

import torch

from ..topics.scores import unigram_log_probs
from .vae import VAE


class NVDM(VAE):
    """Neural variational document model.

    q(z|d) is a Gaussian from an MLP on the counts, p(z) = N(0, I), and the decoder is the
    seed's softmax with energy E(x_i; z) = -z^T R x_i - b_{x_i}: logits R z + b, one linear layer.
    """

    @property
    def topic_weights(self) -> torch.Tensor:
        """R, (|V|, K): column k says how moving z_k up raises or lowers each word's log-probability."""
        return self.decoder.weight


@torch.no_grad()
def unigram_bias(model: NVDM, data) -> None:
    """b = log of the training unigram frequencies (add-one smoothed), so training starts at the unigram model."""
    model.decoder.bias.copy_(unigram_log_probs(data.train).to(model.decoder.bias))
