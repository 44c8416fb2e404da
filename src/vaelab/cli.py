"""Command line: parse -> config -> library call. User errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from . import commands, config as cfg, metrics  # torch-free: the library is imported in the command that runs
from .errors import VaelabError
from .run_folder import RunFolder

# flag -> config key, for the flags that override a config file
FLAG_KEYS = {
    "data": "data", "data_dir": "data_dir", "model": "model", "epochs": "epochs", "batch_size": "batch_size",
    "lr": "lr", "latent_dim": "latent_dim", "hidden": "hidden", "likelihood": "likelihood",
    "estimator": "estimator", "k": "k", "seed": "seed", "device": "device", "val_fraction": "val_fraction",
    "image_size": "image_size", "kl_warmup": "kl_warmup", "patience": "patience", "eval_k": "eval_k",
    "posterior_scale": "posterior_scale", "precision": "precision", "posterior": "posterior", "prior": "prior",
    "noise": "noise", "noise_level": "noise_level", "noise_mean": "noise_mean", "save_every": "save_every",
}
# what may change when a run is resumed: nothing that alters the model or the data it sees
RESUMABLE = {"epochs", "device", "patience", "eval_k", "precision", "save_every"}


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model (default: the seed 001 VAE on scikit-learn's digits)",
                       description="Train a model. Flags override --config; --set key=value covers every other key.")
    p.add_argument("--config", help=f"TOML file or shipped name ({', '.join(cfg.named_configs())})")
    p.add_argument("--data", help="digits | mnist | fashion-mnist | npz:PATH | folder:PATH | corpus:PATH | "
                                  "20newsgroups")
    p.add_argument("--data-dir", help="folder with the dataset's files")
    p.add_argument("--model", help="vae | conv-vae | ae | iwae | dae | nvdm")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--hidden", help="hidden sizes, e.g. 400 or 512,256")
    p.add_argument("--likelihood", choices=cfg.LIKELIHOODS)
    p.add_argument("--posterior-scale", choices=cfg.SCALES)
    p.add_argument("--estimator", choices=("sgvb-a", "sgvb-b", "iwae"))
    p.add_argument("--k", type=int, help="Monte-Carlo / importance samples per example in training")
    p.add_argument("--posterior", choices=cfg.POSTERIORS, help="family of q(z|x) (default gaussian)")
    p.add_argument("--prior", choices=cfg.PRIORS, help="p(z) (default normal)")
    p.add_argument("--noise", choices=cfg.NOISES, help="dae corruption (default masking)")
    p.add_argument("--noise-level", type=float, help="masking: probability of zeroing an input; gaussian: std")
    p.add_argument("--noise-mean", type=float, help="gaussian noise mean mu_D (default 0)")
    p.add_argument("--save-every", type=int, help="also keep every N-th epoch's weights in RUN/epochs/")
    p.add_argument("--kl-warmup", type=int, help="epochs of linear KL warm-up")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--image-size", type=int, help="side length for folder:PATH images")
    p.add_argument("--eval-k", type=int, help="importance samples for the final evaluation")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=cfg.DEVICES)
    p.add_argument("--precision", choices=cfg.PRECISIONS,
                   help="matrix products: auto (default; bf16/tf32 only where native and faster), fp32, tf32, bf16")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-NNN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run at --out")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    p.add_argument("--no-report", action="store_true", help="skip the final evaluation, plots and report")
    return p


def _sweep_parser(sub, train: argparse.ArgumentParser) -> None:
    # every train flag, shared with the train parser (parents=), so the two never drift apart
    p = sub.add_parser("sweep", parents=[train], add_help=False,
                       help="train many small models at once (seeds, a grid of configs), one run folder each",
                       description="Train several models at once on one device. Flags set the base config; "
                                   "--out names the sweep folder, which gets one run folder per model. "
                                   "--resume is refused: continue one swept run with `vaelab train --resume RUN`.")
    p.add_argument("--seeds", type=int, metavar="N", help="N models with seeds SEED, SEED+1, ... (SEED: --seed, 0)")
    p.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                   help='config values to cross, e.g. lr=1e-3,3e-4 latent_dim=2,20 "hidden=512 256,400"')
    p.add_argument("--sequential", action="store_true", help="train the models one after another (no stacking)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaelab", description="Variational autoencoders: train, evaluate, look.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    _sweep_parser(sub, _train_parser(sub))

    p = sub.add_parser("evaluate", help="ELBO, IWAE-k and NLL-k on a split; writes RUN/eval.json")
    p.add_argument("run")
    p.add_argument("--k", type=int, default=None, help="importance samples (default: the run's eval_k)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--batch", type=int, default=None, help="points per chunk (default: sized to memory)")
    p.add_argument("--precision", choices=cfg.PRECISIONS, default="auto",
                   help="matrix products: auto (bf16/tf32 only where native and faster), fp32, tf32 (CUDA), bf16; "
                        "the bounds' sums stay float64")
    p.add_argument("--device", choices=cfg.DEVICES)
    p.add_argument("--noise", choices=cfg.NOISES,
                   help="also score reconstructing the clean x from one seeded corruption (a dae's own by default)")
    p.add_argument("--noise-level", type=float, default=0.25, help="masking probability or gaussian std")
    p.add_argument("--noise-mean", type=float, default=0.0, help="gaussian noise mean")

    p = sub.add_parser("plot", help="write PNGs under RUN/plots/")
    p.add_argument("run")
    p.add_argument("--kind", required=True, choices=cfg.PLOT_KINDS + ("all",))
    p.add_argument("--range", help="manifold: a linear grid X0,X1,Y0,Y1 (e.g. -10,5,-5,5) instead of the prior's quantiles")
    p.add_argument("--device", choices=cfg.DEVICES, default="cpu")

    p = sub.add_parser("report", help="write RUN/report.html with every plot embedded")
    p.add_argument("run")

    p = sub.add_parser("topics", help="print a document model's topics: the top words at both ends of each "
                                      "latent dimension")
    p.add_argument("run")
    p.add_argument("--top", type=int, default=10, help="words per end (default 10)")
    p.add_argument("--device", choices=cfg.DEVICES, default="cpu")


    p = sub.add_parser("bench", help="time vaelab against reference loops, side by side, on this machine",
                       description="W1 training (pytorch/examples loop vs vaelab) and NLL-k evaluation "
                                   "(one point at a time vs vaelab), on Fashion-MNIST.")
    p.add_argument("--what", choices=("train", "eval", "all"), default="all")
    p.add_argument("--epochs", type=int, default=3, help="train: epochs per run")
    p.add_argument("--rounds", type=int, default=2, help="train: times each side runs, taking turns")
    p.add_argument("--precision", choices=cfg.PRECISIONS, default="auto", help="train: vaelab's matmul precision")
    p.add_argument("--k", type=int, default=5000, help="eval: importance samples per point")
    p.add_argument("--ref-points", type=int, default=200, help="eval: points the one-point loop is timed on")
    p.add_argument("--run", help="eval: a trained run to evaluate (default: train a W1 model for one epoch)")
    p.add_argument("--device", choices=cfg.DEVICES, default="auto")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST files")

    sub.add_parser("configs", help="list the shipped experiment configs")
    commands.add_parsers(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    values = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None}
    values |= cfg.parse_set(args.set)
    return values


def _train(args: argparse.Namespace) -> None:
    from . import api

    values = _overrides(args)
    progress = not args.quiet
    if args.resume:
        fixed = sorted(set(values) - RESUMABLE)
        if args.config or fixed:
            raise VaelabError(f"--resume continues a run as configured; only {', '.join(sorted(RESUMABLE))} "
                              f"may change (got {', '.join(fixed) or '--config'})")
        run = api.train(out=args.resume, resume=True, finish=not args.no_report, progress=progress, **values)
    else:
        run = api.train(args.config, out=args.out, overwrite=args.overwrite, finish=not args.no_report,
                        progress=progress, **values)
    print(f"run folder: {run}")


def _sweep(args: argparse.Namespace) -> None:
    from .sweep import sweep as run_sweep

    if args.resume:
        raise VaelabError("a sweep cannot be resumed; continue one of its runs alone with `vaelab train --resume RUN`")
    root = run_sweep(args.config, seeds=args.seeds, grid=args.grid, out=args.out, overwrite=args.overwrite,
                     sequential=args.sequential, finish=not args.no_report, progress=not args.quiet, **_overrides(args))
    print(f"sweep folder: {root}")


def _span(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise VaelabError(f"--range wants X0,X1,Y0,Y1, got {text!r}")
    return vals  # type: ignore[return-value]


def _evaluate(args: argparse.Namespace) -> None:
    from . import api
    from .corruption import Noise

    noise = Noise(args.noise, args.noise_level, args.noise_mean) if args.noise else None
    r = api.evaluate(args.run, k=args.k, split=args.split, device=args.device, batch=args.batch,
                     progress=not args.quiet, precision=args.precision, noise=noise)
    print(f"{r['model']} on {r['data']} ({r['split']} split, {r['n']} examples), nats per example")
    shown = ("split", "model", "data", "likelihood", "n", "k", "words")  # said in the line above, or context
    for key in metrics.order(k for k, v in r.items() if k in metrics.METRICS and k not in shown):
        if key in r:
            name = metrics.label(key, r.get("k"))
            val = r[key]
            print(f"  {name:<18} {val:>12.4f}" if isinstance(val, float) else f"  {name:<18} {val:>12}")
    if "noise" in r:
        print(f"  clean x from noisy inputs ({r['noise']}): -log p(x | f(x~)) {r['noisy_recon_error']:.4f}, "
              f"squared error {r['noisy_squared_error']:.4f}")
    print(f"wrote {RunFolder(args.run).eval_path}")


def _plot(args: argparse.Namespace) -> None:
    from . import visualize

    span = _span(args.range)
    view = visualize.RunView(args.run, args.device)
    kinds = view.kinds() if args.kind == "all" else (args.kind,)
    for kind in kinds:
        try:
            path = view.make(kind, span=span) if kind == "manifold" else view.make(kind)
        except VaelabError as e:
            if args.kind != "all":
                raise
            print(f"skipped {kind}: {e}")  # e.g. image plots of a document model
            continue
        print(f"wrote {path}")


def _topics(args: argparse.Namespace) -> None:
    from . import documents, visualize

    if args.top < 1:
        raise VaelabError(f"--top must be at least 1, got {args.top}")
    print(documents.format_table(visualize.RunView(args.run, args.device).topic_table(args.top)))


def _bench(args: argparse.Namespace) -> None:
    from . import bench

    for name, value in (("--epochs", args.epochs), ("--rounds", args.rounds), ("--k", args.k),
                        ("--ref-points", args.ref_points)):
        if value < 1:
            raise VaelabError(f"{name} must be at least 1")
    if args.what in ("train", "all"):
        bench.train_w1(args.epochs, args.rounds, args.device, args.data_dir, print, args.precision)
    if args.what in ("eval", "all"):
        bench.eval_nll(args.run, args.k, args.ref_points, args.device, args.data_dir, print)


def _glue_negative_values(argv: list[str]) -> list[str]:
    """`--range -10,5,-5,5` -> `--range=-10,5,-5,5`: argparse would take the value for a flag."""
    out: list[str] = []
    for i, a in enumerate(argv):
        if i and argv[i - 1] == "--range" and a.startswith("-") and a[1:2].isdigit():
            out[-1] = f"--range={a}"
        else:
            out.append(a)
    return out


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (tests)
        pass


def _report(args: argparse.Namespace) -> None:
    from . import api

    print(f"wrote {api.report(args.run)}")


COMMANDS = {"train": _train, "sweep": _sweep, "evaluate": _evaluate, "plot": _plot, "report": _report,
            "topics": _topics, "bench": _bench, "configs": lambda args: print("\n".join(cfg.named_configs()))}  # the others: commands.dispatch


def run(argv: list[str] | None = None) -> int:
    """Entry point returning an exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(_glue_negative_values(sys.argv[1:] if argv is None else list(argv)))
    warnings.simplefilter("default")
    try:
        COMMANDS.get(args.command, commands.dispatch)(args)
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vaelab topics RUN | head`: the reader left; stop quietly
        _silence_stdout()
        return 1
    except OSError as e:  # writing the run failed: no space, read-only, --out on or under a file
        where = f"{e.filename}: " if e.filename else ""
        print(f"vaelab: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaelab: interrupted; `vaelab train --resume RUN` continues from the last finished epoch", file=sys.stderr)
        return 130
    return 0


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()  # output to a pipe is buffered until here
    except BrokenPipeError:
        _silence_stdout()
        code = 1
    sys.exit(code)
