"""NLL-k over the 10,000 Fashion-MNIST test images: vaelab's evaluator vs a one-point-at-a-time loop.

    (a) pythae's way: each point alone, its k importance samples in mini-batches of 100, timed on
        --ref-points points and extrapolated to the whole test set;
    (b) vaelab.estimators.evaluation.point_bounds: points and samples batched together in memory-sized chunks.

Both estimate the same NLL-k of the same model; the mean over the shared points is printed for
each. Without --run, a W1 model is trained for one epoch first. `vaelab bench --what eval` runs
the same thing.

    python benchmarks/bench_eval.py --k 5000 --ref-points 200 [--run RUN] [--device cpu|cuda]
"""

import argparse

from vaelab.bench.timings import eval_nll

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run")
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--ref-points", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir")
    a = ap.parse_args()
    eval_nll(a.run, a.k, a.ref_points, a.device, a.data_dir, print)
