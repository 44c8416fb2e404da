"""`vaelab bench`: vaelab timed against the reference loops of bench/reference.py, side by side, in one run.

Both sides run on the machine at hand, take turns, and report the same quality number (test ELBO
for training, NLL-k for evaluation) so a speed-up cannot hide a loss in quality.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from .. import api
from ..data import load_images
from ..estimators.evaluation import point_bounds
from ..runs import inputs, loading
from ..runs.folder import RunFolder
from ..runs.resolve import device as resolve_device
from .reference import example_test_elbo, nll_one_point_at_a_time, sync, train_example


def cpu_name() -> str:
    """The CPU's model name and torch's vector capability, e.g. 'AMD EPYC (AVX2, no native bf16)'."""
    from ..runtime.precision import missing

    name = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    bf16 = "no native bf16" if missing("bf16", torch.device("cpu")) else "native bf16"
    return f"{name} ({torch.backends.cpu.get_cpu_capability()}, {bf16})"


def machine(device: torch.device) -> str:
    """One line naming the machine the numbers came from."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return f"{name}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, device {device}"


def _steady(times: list[list[float]]) -> float:
    """Median epoch time, leaving out each run's first epoch (one-off warm-up costs) when it has more."""
    return statistics.median(t for run in times for t in (run[1:] if len(run) > 1 else run))


def train_w1(epochs: int, rounds: int, device: str, data_dir: str | None, log: Callable[[str], None],
             precision: str | tuple[str, ...] = "auto") -> dict:
    """W1 (784-400-20, Bernoulli, Adam 1e-3, batch 128, Fashion-MNIST): the example's loop vs vaelab.train.

    Several precisions take turns with the reference in every round, so their ratios share the machine's mood.
    """
    precisions = (precision,) if isinstance(precision, str) else tuple(precision)
    dev = resolve_device(device)
    data = load_images("fashion-mnist", data_dir=data_dir, val_fraction=0.0)
    n = len(data.train)
    ref_times, our_times = [], {p: [] for p in precisions}
    concrete, elbo = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            t, ref_model = train_example(data.train, data.y_train, epochs, dev)
            ref_times.append(t)
            for p in precisions:
                run = api.train("pytorch-examples", finish=False,
                                out=Path(tmp) / f"w1-{p}-{r}", epochs=epochs, val_fraction=0.0,
                                device=device, data_dir=data_dir, precision=p, log=lambda s: None)
                our_times[p].append([row["train_seconds"] for row in RunFolder(run).read_metrics()])
                c = loading.load_config(run)
                concrete[p] = c.precision
                elbo[p] = api.evaluate(run, k=1, device=device, data=data, write=False, precision="fp32")["elbo"]
        x_test = inputs.eval_inputs(c, data, "test", dev)
    ref_elbo = example_test_elbo(ref_model, x_test)
    a = _steady(ref_times)
    log(f"W1 training, fashion-mnist, {n} images, {rounds} rounds of {epochs} epochs per side; {machine(dev)}")
    log(f"  (a) per-sample DataLoader loop : {a:7.3f} s/epoch  {n / a:9.0f} images/s  "
        f"epochs {[[round(t, 2) for t in run] for run in ref_times]}")
    out = {"machine": machine(dev), "ref_s_per_epoch": a, "ref_test_elbo": ref_elbo, "vaelab": {}}
    for p in precisions:
        b = _steady(our_times[p])
        name = p if concrete[p] == p else f"{p} -> {concrete[p]}"
        log(f"  (b) vaelab trainer, {name:<10} : {b:7.3f} s/epoch  {n / b:9.0f} images/s  "
            f"epochs {[[round(t, 2) for t in run] for run in our_times[p]]}")
        log(f"      speed-up (a)/(b): {a / b:.2f}x   test ELBO after {epochs} epochs, 1 sample: "
            f"(a) {ref_elbo:.2f}  (b) {elbo[p]:.2f} nats")
        out["vaelab"][p] = {"precision": concrete[p], "s_per_epoch": b, "speedup": a / b, "test_elbo": elbo[p]}
    return out


def eval_nll(run: str | Path | None, k: int, ref_points: int, device: str, data_dir: str | None,
             log: Callable[[str], None]) -> dict:
    """NLL-k over the whole test split with vaelab's evaluator vs the one-point loop (timed on ref_points)."""
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        if run is None:  # a W1 model, one epoch, is enough to time the evaluation
            run = api.train("pytorch-examples", finish=False,
                            out=Path(tmp) / "w1", epochs=1, device=device, data_dir=data_dir,
                            log=lambda s: None)
        c = loading.load_config(run)
        data = inputs.load_data(c)
        _, model = loading.load_model(run, data.shape, dev)
    x = inputs.eval_inputs(c, data, "test", dev)
    sync(dev)
    start = time.perf_counter()
    ours = point_bounds(model, x, k, progress=False)
    sync(dev)
    b = time.perf_counter() - start
    p = min(ref_points, len(x))
    torch.manual_seed(0)
    start = time.perf_counter()
    ref = nll_one_point_at_a_time(model, x[:p], k)
    sync(dev)
    a_part = time.perf_counter() - start
    a = a_part * len(x) / p
    log(f"NLL-{k} over {len(x)} test images of {c.data} ({c.model}, {c.hidden}, latent {c.latent_dim}); {machine(dev)}")
    log(f"  (a) one point at a time : {a_part:8.2f} s for {p} points -> {a:8.1f} s for all {len(x)} (extrapolated)")
    log(f"  (b) vaelab evaluator    : {b:8.2f} s for all {len(x)}")
    log(f"  speed-up (a)/(b): {a / b:.1f}x   mean NLL-{k} on the first {p} points: "
        f"(a) {ref.mean():.3f}  (b) {-ours.iwae[:p].mean():.3f} nats")
    return {"ref_seconds": a, "ref_points": p, "vaelab_seconds": b, "speedup": a / b,
            "ref_nll": float(ref.mean()), "vaelab_nll": float(-ours.iwae[:p].mean()),
            "vaelab_nll_all": float(-ours.iwae.mean())}
