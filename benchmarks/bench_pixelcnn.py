"""PixelCNN on Fashion-MNIST: seconds per training epoch (timed on a few steps, extrapolated) and 64 samples.

The training step is the trainer's own (objectives.exact, fused Adam, a fresh binarization per batch);
`--steps` steps of `--batch-size` are timed after one warm-up step and scaled to the 54,000 training
images of an epoch (val_fraction 0.1). Then 64 samples of 28x28 are drawn, seeded, and timed.

    PYTHONPATH=src python3 benchmarks/bench_pixelcnn.py [--steps 20] [--channels 32 --layers 5 --kernel 5]
                                                        [--context 256]
"""

import argparse
import math
import time

import torch

from vaelab import models
from vaelab.config import schema as cfg
from vaelab.data import binarize, rows
from vaelab.estimators import objectives
from vaelab.runs import inputs
from vaelab.training.loop import make_optimizer

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--channels", type=int, default=cfg.Config.pixel_channels)
    ap.add_argument("--layers", type=int, default=cfg.Config.pixel_layers)
    ap.add_argument("--kernel", type=int, default=cfg.Config.pixel_kernel)
    ap.add_argument("--context", type=int, default=cfg.Config.pixel_context, help="the row context's hidden units")
    ap.add_argument("--model", default="pixelcnn")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    c = cfg.Config(data="fashion-mnist", model=a.model, pixel_channels=a.channels, pixel_layers=a.layers,
                   pixel_kernel=a.kernel, pixel_context=a.context, batch_size=a.batch_size)
    data = inputs.load_data(c)
    torch.manual_seed(0)
    model = models.build(c, data.shape)
    params = sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model, 1e-3)
    objective = objectives.get(models.estimator_for(c))
    n_train = len(data.train)

    def step() -> float:
        idx = torch.randint(n_train, (a.batch_size,))
        x = binarize(rows(data.train, idx, data.scale))
        bound = objective(model, x)
        opt.zero_grad(set_to_none=True)
        bound.loss.backward()
        opt.step()
        return float(bound.value.mean())

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(a.steps):
        value = step()
    per_step = (time.perf_counter() - start) / a.steps
    steps = math.ceil(n_train / a.batch_size)
    print(f"{a.model}: {a.layers} gated layers x {a.channels} channels, kernel {a.kernel}, row context {a.context}: "
          f"{params:,} parameters; "
          f"torch threads {torch.get_num_threads()}")
    print(f"train: {per_step:.3f} s/step (batch {a.batch_size}, {a.steps} steps timed) -> "
          f"{per_step * steps:.0f} s/epoch extrapolated to {steps} steps ({n_train} images); last bound {value:.1f}")
    with torch.no_grad():
        start = time.perf_counter()
        x = model.sample(64, torch.Generator().manual_seed(0))
        print(f"sample: 64 images of 28x28 in {time.perf_counter() - start:.1f} s (mean pixel {float(x.mean()):.3f})")
