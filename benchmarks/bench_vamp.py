"""The VampPrior's log-density: one float64 matrix product against torch's broadcast mixture.

    python benchmarks/bench_vamp.py [--samples 5000] [--points 4] [--components 500] [--dim 40] [--threads 1]

Times log p(z) for (samples, points) draws under a mixture of `components` diagonal Gaussians of
`dim` dimensions (the shape of one NLL-5000 chunk of fashion-hvae-vamp), with torch's MixtureSameFamily
(the reference, broadcasting over samples x points x components x dim) and with vaelab's
EqualGaussianMixture, in the same run; prints both times, their ratio and the largest difference.
Then NLL-k (`--k`, default 5000) of `--eval-points` random binary 28x28 images under a freshly built
fashion-hvae-vamp-sized model (784-300-300-(40, 40), K = 500; untrained weights time the same), with the
VampPrior held for the evaluation (vamp.held, what `vaelab evaluate` does) and re-encoded per chunk.
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from vaelab import Config, models  # noqa: E402
from vaelab.estimators import evaluation as evaluate  # noqa: E402
from vaelab.models.vamp import EqualGaussianMixture  # noqa: E402


def best_of(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--components", type=int, default=500)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--eval-points", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(a.components, a.dim, generator=g)
    scale = 0.3 + torch.rand(a.components, a.dim, generator=g)  # posteriors' scales: 0.3 to 1.3
    z = loc[torch.randint(a.components, (a.samples, a.points), generator=g)] + 0.5 * torch.randn(
        a.samples, a.points, a.dim, generator=g)  # (S, B, D) near the components, as posterior samples are
    components = Independent(Normal(loc, scale), 1)
    reference = MixtureSameFamily(Categorical(logits=torch.zeros(a.components)), components)
    fast = EqualGaussianMixture(components)
    with torch.no_grad():
        diff = float((fast.log_prob(z) - reference.log_prob(z)).abs().max())  # (S, B) against torch's float32
        t_ref = best_of(lambda: reference.log_prob(z))
        t_fast = best_of(lambda: fast.log_prob(z))
    print(f"log p(z) of {a.samples} x {a.points} draws, {a.components} components, {a.dim} dims, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    print(f"MixtureSameFamily (broadcast, float32): {t_ref * 1e3:.1f} ms")
    print(f"EqualGaussianMixture (matrix product, float64): {t_fast * 1e3:.1f} ms")
    print(f"speed-up {t_ref / t_fast:.1f}x; largest |difference| {diff:.2e} nat")
    held_prior(a)


def held_prior(a) -> None:
    torch.manual_seed(0)
    c = Config(model="hvae", hidden=(300, 300), latent_dim=(40, 40), prior="vamp", pseudo_inputs=a.components)
    model = models.build(c, (1, 28, 28))
    x = torch.rand(a.eval_points, 784).round()
    times, bounds = {}, {}
    for name, hold in (("held", evaluate.held), ("per chunk", lambda m: contextlib.nullcontext())):
        evaluate.held = hold
        start = time.perf_counter()
        bounds[name] = evaluate.point_bounds(model, x, a.k).iwae
        times[name] = time.perf_counter() - start
    diff = abs(bounds["held"] - bounds["per chunk"]).max()
    print(f"NLL-{a.k} of {a.eval_points} points, hvae 784-300-300-(40, 40) + VampPrior K={a.components}: "
          f"prior encoded per chunk {times['per chunk']:.2f} s, held {times['held']:.2f} s, "
          f"speed-up {times['per chunk'] / times['held']:.2f}x; largest |difference| {diff:.1e} nat")


if __name__ == "__main__":
    main()
