"""Peak memory of training on a dataset 1x and 10x the size of Fashion-MNIST's training split.

The same rows are written as npy:DIR (streamed from the file in chunks) and as npz:PATH (loaded and
kept resident), and one epoch of a small VAE is trained on each in a fresh process. Prints the peak
resident set size (RSS) of each process: streamed memory should stay flat as the data grows.

    python benchmarks/bench_memmap.py [--scale 10] [--work DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vaelab.data import load_images

TRAIN = ["-q", "train", "--epochs", "1", "--hidden", "64", "--latent-dim", "8", "--batch-size", "1024",
         "--device", "cpu", "--no-report"]


CHILD = """
import sys
from vaelab.cli.main import run
code = run(sys.argv[1:])
# VmHWM is this process's own peak; getrusage's ru_maxrss would also count the parent it was forked from
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(peak.split()[1]) // 1024, file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run vaelab with args in a fresh process; its peak RSS in MB and wall seconds."""
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"vaelab {' '.join(args)} failed:\n{r.stderr}")
    return float(r.stderr.strip().splitlines()[-1]), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--work", help="folder for the generated files (default: a temporary folder)")
    args = ap.parse_args()
    data = load_images("fashion-mnist", val_fraction=0.0)
    x = data.train.numpy().reshape(-1, 28, 28)  # (60000, 28, 28) uint8
    x_test = data.test.numpy().reshape(-1, 28, 28)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        print(f"{'rows':>9} {'file MB':>8} {'streamed npy: peak RSS MB':>26} {'resident npz: peak RSS MB':>26}")
        for scale in (1, args.scale):
            d = Path(tmp) / f"x{scale}"
            d.mkdir()
            big = np.concatenate([x] * scale)
            np.save(d / "x_train.npy", big)
            np.save(d / "x_test.npy", x_test)
            np.savez(d / "all.npz", x_train=big, x_test=x_test)
            del big
            streamed, ts = peak_rss_mb([*TRAIN, "--data", f"npy:{d}", "--out", str(d / "run-npy")])
            resident, tr = peak_rss_mb([*TRAIN, "--data", f"npz:{d / 'all.npz'}", "--out", str(d / "run-npz")])
            mb = (d / "x_train.npy").stat().st_size / 2**20
            print(f"{60000 * scale:>9} {mb:>8.0f} {streamed:>18.0f} ({ts:4.0f} s) {resident:>18.0f} ({tr:4.0f} s)")


if __name__ == "__main__":
    main()
