"""NVDM on BBC News with the shipped nvdm-bbc config: training wall time and the resulting test numbers.

Times `vaelab.train` (training only: the epochs with their validation passes and checkpoints)
and then evaluates the test split. Prints the torch thread count and the load average, because
on a shared 2-core machine both decide the time more than the code does.

    python benchmarks/bench_nvdm.py [--threads N] [--epochs E] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import vaelab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--epochs", type=int, default=None, help="override the config's 100 epochs")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbc_news"))
    ap.add_argument("--eval-k", type=int, default=1000)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = {"epochs": args.epochs} if args.epochs else {}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = vaelab.train("nvdm-bbc", finish=False, data=f"corpus:{args.data}", device="cpu", out=Path(tmp) / "run",
                           log=lambda s: None, **extra)
        train_wall = time.perf_counter() - start
        epochs = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
        ev = vaelab.evaluate(run, k=args.eval_k, write=False)
    print(f"torch threads {torch.get_num_threads()}, "
          f"load average before {load[0]:.1f} / after {os.getloadavg()[0]:.1f}")
    print(f"training wall time {train_wall:.1f} s for {len(epochs)} epochs "
          f"({sum(e['train_seconds'] for e in epochs):.1f} s in the epochs' steps)")
    print(f"test perplexity {ev['perplexity']:.1f} (ELBO), {ev['perplexity_is']:.1f} (IWAE-{ev['k']}), "
          f"unigram {ev['unigram_perplexity']:.1f}, ratio {ev['perplexity'] / ev['unigram_perplexity']:.3f}, "
          f"NPMI {ev['npmi']:.3f}")


if __name__ == "__main__":
    main()
