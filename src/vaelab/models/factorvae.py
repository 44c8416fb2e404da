"""FactorVAE (Kim & Mnih 2018): a VAE penalised by its total correlation, which a discriminator estimates.

The discriminator D tells samples of q(z) from samples of prod_d q(z_d) (each dimension shuffled across a
second batch: objectives.factorvae gives D one half of each batch as joint, the other half permuted, as
their Algorithm 2 draws two batches); log D(z) / (1 - D(z)) then estimates log q(z) / prod_d q(z_d), whose
mean is the total correlation.
It trains alongside the VAE on its own Adam group (own betas and moments, saved in the run's checkpoint with
the rest), through objectives.factorvae: one loss whose two parts each reach only their own parameters.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .networks import MLP
from .vae import VAE

DISCRIMINATOR_BETAS = (0.5, 0.9)  # Kim & Mnih 2018, Appendix A: the discriminator's Adam (lr as the VAE's)


class FactorVAE(VAE):
    """The VAE with a total-correlation discriminator Dz -> hidden -> 2 logits ([q(z), prod_d q(z_d)])."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, discriminator: tuple[int, ...] = (256, 256),
                 **kw):
        super().__init__(encoder, decoder, **kw)
        self.discriminator = MLP(self.latent_dim, discriminator, 2)

    def tc_logits(self, z: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """D's logits (..., 2) for z (..., Dz); frozen: through detached weights (no gradient reaches D)."""
        if not frozen:
            return self.discriminator(z)
        weights = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, weights, (z,))

    def optimizer_groups(self) -> list[dict]:
        """The VAE's parameters, then the discriminator's with its own Adam betas (training/loop.make_optimizer)."""
        own = {id(p) for p in self.discriminator.parameters()}
        return [{"params": [p for p in self.parameters() if id(p) not in own]},
                {"params": list(self.discriminator.parameters()), "betas": DISCRIMINATOR_BETAS}]
