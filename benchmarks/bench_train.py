"""W1, the pytorch/examples workload, timed two ways in one run on the machine at hand.

    (a) reference: a torchvision-style loop: a map-style Dataset returning one image tensor per
        __getitem__, a shuffling DataLoader collating batches of 128, the model written out by
        hand, BCE + closed-form KL per batch.
    (b) vaelab: `vaelab.train` with the pytorch-examples config (device-resident uint8 data,
        batches cut by index).

Same model (784-400-20, Bernoulli, Adam 1e-3, batch 128), same dynamic binarization, same
number of epochs. Prints s/epoch, samples/s, the ratio and both models' test ELBO.

    python benchmarks/bench_train.py --epochs 3 [--device cpu|cuda] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

import vaelab
from vaelab import runs
from vaelab.data import load_images


class PerSample(Dataset):
    """One float image per index, the way torchvision's ToTensor hands them out."""

    def __init__(self, images: torch.Tensor):
        self.images = images  # (N, 784) uint8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i].float().div(255.0), 0


class Reference(nn.Module):
    """784-400-20 VAE as the classic example writes it."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(784, 400)
        self.mu = nn.Linear(400, 20)
        self.logvar = nn.Linear(400, 20)
        self.dec1 = nn.Linear(20, 400)
        self.dec2 = nn.Linear(400, 784)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.dec2(F.relu(self.dec1(z)))
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / x.shape[0]


def run_reference(train: torch.Tensor, epochs: int, device: torch.device) -> tuple[list[float], Reference]:
    torch.manual_seed(0)
    model = Reference().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PerSample(train), batch_size=128, shuffle=True)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    device = torch.device(args.device)
    data = load_images("fashion-mnist", data_dir=args.data_dir, val_fraction=0.0)
    n = len(data.train)

    ref_times, ref_model = run_reference(data.train, args.epochs, device)

    with tempfile.TemporaryDirectory() as tmp:
        run = vaelab.train("pytorch-examples", out=Path(tmp) / "w1", epochs=args.epochs, val_fraction=0.0,
                           device=args.device, data_dir=args.data_dir, log=lambda s: None)
        rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
        ours = [r["train_seconds"] for r in rows]
        c = runs.load_config(run)
        x_test = runs.eval_inputs(c, data, "test", device)
        ours_elbo = vaelab.evaluate(run, k=1, device=args.device, data=data, write=False)["elbo"]
    ref_elbo = reference_test_elbo(ref_model, x_test)

    # the first epoch includes one-off warm-up costs; report the best of the rest when there are any
    pick = (lambda t: min(t[1:]) if len(t) > 1 else t[0])
    a, b = pick(ref_times), pick(ours)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}")
    print(f"W1 fashion-mnist, {n} train images, {args.epochs} epochs each")
    print(f"(a) per-sample DataLoader loop : {a:7.3f} s/epoch  {n / a:9.0f} samples/s  epochs {[round(t, 2) for t in ref_times]}")
    print(f"(b) vaelab trainer             : {b:7.3f} s/epoch  {n / b:9.0f} samples/s  epochs {[round(t, 2) for t in ours]}")
    print(f"speed-up (a)/(b): {a / b:.2f}x")
    print(f"test ELBO after {args.epochs} epochs (1 sample, nats/example): (a) {ref_elbo:.2f}  (b) {ours_elbo:.2f}")


if __name__ == "__main__":
    main()
