"""W1, the pytorch/examples workload, timed two ways in one run on the machine at hand.

    (a) the pytorch/examples loop: a per-sample dataset doing what torchvision's MNIST + ToTensor
        do (uint8 -> PIL -> float tensor), a shuffling DataLoader, the example's model and Adam;
    (b) vaelab.train with the pytorch-examples config.

Same model (784-400-20, Bernoulli, Adam 1e-3, batch 128), same dynamic binarization, same number
of epochs; the two take turns. Prints s/epoch, images/s, the ratio and both test ELBOs. The code
lives in vaelab.bench and vaelab.reference; `vaelab bench --what train` runs the same thing.

    python benchmarks/bench_train.py --epochs 3 --rounds 2 [--precision fp32 auto] [--device cpu|cuda] [--data-dir DIR]
"""

import argparse

from vaelab.bench.timings import train_w1

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir")
    ap.add_argument("--precision", nargs="+", default=["fp32", "auto"], choices=("auto", "fp32", "tf32", "bf16"),
                    help="vaelab precisions, each taking turns with the reference in every round")
    a = ap.parse_args()
    train_w1(a.epochs, a.rounds, a.device, a.data_dir, print, tuple(a.precision))
