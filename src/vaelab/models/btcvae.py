"""β-TCVAE (Chen et al. 2018): the VAE trained with its KL split into index-code mutual information, total
correlation and dimension-wise KL, the total correlation weighted by β (estimators/objectives.py's btcvae).

The networks, posterior and prior are the VAE's; the model only carries N, the training set's size, which the
minibatch-weighted sampling estimator of q(z) needs. Evaluation, sampling and plots see a plain VAE.
"""

from __future__ import annotations

from .vae import VAE


class BetaTCVAE(VAE):
    """A VAE whose training objective is objectives.btcvae; dataset_size N is set from the training data."""

    dataset_size: int | None = None  # N in log(N M) of the minibatch-weighted estimator (set_dataset_size)


def set_dataset_size(model: BetaTCVAE, data: object) -> None:
    """ModelSpec.init: N = the number of training examples (the estimator's q(z) averages over all of them)."""
    model.dataset_size = len(data.train)
