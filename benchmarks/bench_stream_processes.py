"""Peak memory of each process when N gloo processes train on a streamed npy: file (torchrun, one node).

Fashion-MNIST's training rows are tiled `--scale` times into x_train.npy (scale 10: 600,000 x 784 uint8,
470 MB), and one epoch (or `--steps` steps' worth of rows, by truncating the file) of a small VAE is trained
on it with `--set shards=N` in one process and under torchrun with N processes, and on a 1x file for scale.
Prints each process's peak resident set size (VmHWM): with streaming it stays flat as the file grows, and each
process reads only its shards' rows.

    OMP_NUM_THREADS=1 python benchmarks/bench_stream_processes.py [--scale 10] [--processes 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vaelab.data import load_images

TRAIN = ["-q", "train", "--epochs", "1", "--hidden", "64", "--latent-dim", "8", "--batch-size", "1024",
         "--device", "cpu", "--no-report"]

# one process's peak RSS (VmHWM: its own, not its parent's), written to PEAKS-RANK once vaelab returns
CHILD = """
import os, sys
from vaelab.cli.main import run
code = run(sys.argv[2:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
with open(f"{sys.argv[1]}-{os.environ.get('RANK', '0')}", "w") as f:
    f.write(str(int(peak.split()[1]) // 1024))
sys.exit(code)
"""


def peaks_mb(n: int, args: list[str], work: Path) -> tuple[list[int], float]:
    """Train with args in n processes (torchrun when n > 1); each process's peak RSS in MB and wall seconds."""
    script, peaks = work / "child.py", work / "peak"
    script.write_text(CHILD)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)] if n > 1 \
        else [sys.executable]
    start = time.perf_counter()
    r = subprocess.run([*launch, str(script), str(peaks), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))
    if r.returncode != 0:
        raise SystemExit(f"vaelab {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    out = [int((work / f"peak-{rank}").read_text()) for rank in range(n)]
    for rank in range(n):
        (work / f"peak-{rank}").unlink()
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--work", help="folder for the generated files (default: a temporary folder)")
    args = ap.parse_args()
    data = load_images("fashion-mnist", val_fraction=0.0)
    x = data.train.numpy().reshape(-1, 28, 28)  # (60000, 28, 28) uint8
    x_test = data.test.numpy().reshape(-1, 28, 28)
    n = args.processes
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        print(f"{'rows':>9} {'file MB':>8} {'1 process, shards=' + str(n) + ': peak RSS MB':>34} "
              f"{str(n) + ' processes: peak RSS MB per rank':>36}")
        for scale in (1, args.scale):
            d = Path(tmp) / f"x{scale}"
            d.mkdir()
            np.save(d / "x_train.npy", np.concatenate([x] * scale))
            np.save(d / "x_test.npy", x_test)
            common = [*TRAIN, "--data", f"npy:{d}", "--set", f"shards={n}"]
            (one,), t1 = peaks_mb(1, [*common, "--out", str(d / "run-one")], Path(tmp))
            many, tn = peaks_mb(n, [*common, "--out", str(d / "run-many")], Path(tmp))
            mb = (d / "x_train.npy").stat().st_size / 2**20
            print(f"{60000 * scale:>9} {mb:>8.0f} {one:>26} ({t1:4.0f} s) {' '.join(map(str, many)):>28} ({tn:4.0f} s)")
            (d / "x_train.npy").unlink()


if __name__ == "__main__":
    main()
