"""Reference loops that `vaelab bench` times vaelab against: the way other code commonly does it.

- W1 training the pytorch/examples way: a map-style dataset that does per image what
  torchvision's MNIST + ToTensor() do (uint8 -> PIL image -> float tensor), a shuffling DataLoader,
  the example's 784-400-20 model (sigmoid decoder, summed BCE, closed-form KL) and plain Adam.
- NLL the pythae way: one data point at a time, its k importance samples in mini-batches.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset


class PerSample(Dataset):
    """One (1, 28, 28) float image per index, made through PIL as torchvision's MNIST + ToTensor do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images.reshape(-1, 28, 28), labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i].numpy(), mode="L")
        t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1).contiguous()
        return t.float().div(255), int(self.labels[i])


class ExampleVAE(nn.Module):
    """784-400-20 VAE as pytorch/examples writes it."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative single-sample ELBO, averaged over the batch (nats per example)."""
        x = x.view(-1, 784)
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = torch.sigmoid(self.fc4(F.relu(self.fc3(z))))
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / x.shape[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_example(images: torch.Tensor, labels: torch.Tensor, epochs: int,
                  device: torch.device) -> tuple[list[float], ExampleVAE]:
    """Train ExampleVAE the pytorch/examples way (with torch.bernoulli binarization); seconds per epoch."""
    torch.manual_seed(0)
    model = ExampleVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PerSample(images, labels), batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        for x, _ in loader:
            x = torch.bernoulli(x.to(device))
            loss = model.loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times, model


@torch.no_grad()
def example_test_elbo(model: ExampleVAE, x: torch.Tensor) -> float:
    """Single-sample test ELBO of ExampleVAE, nats per example."""
    torch.manual_seed(1234)
    return -float(sum(model.loss(x[i:i + 1000]) * len(x[i:i + 1000]) for i in range(0, len(x), 1000))) / len(x)


@torch.no_grad()
def nll_one_point_at_a_time(model: nn.Module, x: torch.Tensor, k: int, batch: int = 100) -> np.ndarray:
    """-log p(x) per point by importance sampling, each point alone with its k samples in batches (pythae's way)."""
    out = np.empty(len(x))
    for i in range(len(x)):
        xi = x[i:i + 1]
        log_w = []
        for _ in range(max(1, k // batch)):
            xb = xi.expand(batch, -1)  # the point repeated, one row per sample
            q = model.encode(xb)
            z = q.rsample()
            log_w.append(model.decode(z).log_prob(xb) + model.prior().log_prob(z) - q.log_prob(z))
        log_w = torch.cat(log_w)
        out[i] = -(float(torch.logsumexp(log_w, 0)) - math.log(len(log_w)))
    return out
