"""W1, the pytorch/examples workload, timed two ways in one run on the machine at hand.

    (a) reference: the pytorch/examples loop: a map-style Dataset doing what torchvision's MNIST
        + ToTensor do per image (uint8 -> PIL -> float tensor), a shuffling DataLoader collating
        batches of 128, the model written out as the example does, BCE + closed-form KL.
    (b) vaelab: `vaelab.train` with the pytorch-examples config (device-resident uint8 data,
        batches cut by index).

Same model (784-400-20, Bernoulli, Adam 1e-3, batch 128), same dynamic binarization, same
number of epochs. Prints s/epoch, samples/s, the ratio and both models' test ELBO.

    python benchmarks/bench_train.py --epochs 3 --rounds 2 [--device cpu|cuda] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

import vaelab
from vaelab import runs
from vaelab.data import load_images


class PerSample(Dataset):
    """What torchvision's MNIST dataset + ToTensor() do per index, written out (no torchvision here).

    The images are kept as one (N, 28, 28) uint8 tensor; each __getitem__ makes a PIL image of one
    of them and converts it back to a float (1, 28, 28) tensor in [0, 1].
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images.reshape(-1, 28, 28), labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i].numpy(), mode="L")
        t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1).permute(2, 0, 1).contiguous()
        return t.float().div(255), int(self.labels[i])


class Reference(nn.Module):
    """784-400-20 VAE as pytorch/examples writes it: sigmoid decoder, summed BCE, closed-form KL."""

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


def run_reference(train: torch.Tensor, labels: torch.Tensor, epochs: int,
                  device: torch.device) -> tuple[list[float], Reference]:
    torch.manual_seed(0)
    model = Reference().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PerSample(train, labels), batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for x, _ in loader:
            x = torch.bernoulli(x.to(device))
            loss = model.loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, model


@torch.no_grad()
def reference_test_elbo(model: Reference, x: torch.Tensor) -> float:
    torch.manual_seed(1234)
    return -float(sum(model.loss(x[i:i + 1000]) * len(x[i:i + 1000]) for i in range(0, len(x), 1000))) / len(x)


def run_vaelab(args: argparse.Namespace, data, tmp: str, r: int) -> tuple[list[float], Path]:
    run = vaelab.train("pytorch-examples", out=Path(tmp) / f"w1-{r}", epochs=args.epochs, val_fraction=0.0,
                       device=args.device, data_dir=args.data_dir, log=lambda s: None)
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["train_seconds"] for row in rows], run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alternate (a) and (b) this many times")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    device = torch.device(args.device)
    data = load_images("fashion-mnist", data_dir=args.data_dir, val_fraction=0.0)
    n = len(data.train)

    # (a) and (b) take turns, so a slow spell of a shared machine hits both sides alike. The first
    # epoch of each run holds one-off warm-up costs and is left out of the medians.
    ref_times, our_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            t, ref_model = run_reference(data.train, data.y_train, args.epochs, device)
            ref_times.append(t)
            t, run = run_vaelab(args, data, tmp, r)
            our_times.append(t)
        c = runs.load_config(run)
        x_test = runs.eval_inputs(c, data, "test", device)
        ours_elbo = vaelab.evaluate(run, k=1, device=args.device, data=data, write=False)["elbo"]
    ref_elbo = reference_test_elbo(ref_model, x_test)

    def steady(times: list[list[float]]) -> float:
        return statistics.median(t for run in times for t in (run[1:] if len(run) > 1 else run))

    a, b = steady(ref_times), steady(our_times)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}")
    print(f"W1 fashion-mnist, {n} train images, {args.rounds} rounds of {args.epochs} epochs per side")
    print(f"(a) per-sample DataLoader loop : {a:7.3f} s/epoch  {n / a:9.0f} samples/s  "
          f"epochs {[[round(t, 2) for t in run] for run in ref_times]}")
    print(f"(b) vaelab trainer             : {b:7.3f} s/epoch  {n / b:9.0f} samples/s  "
          f"epochs {[[round(t, 2) for t in run] for run in our_times]}")
    print(f"speed-up (a)/(b), median epochs: {a / b:.2f}x")
    print(f"test ELBO after {args.epochs} epochs (1 sample, nats/example): (a) {ref_elbo:.2f}  (b) {ours_elbo:.2f}")


if __name__ == "__main__":
    main()
