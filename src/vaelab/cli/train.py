"""The train and sweep commands: their flags, and how flags become a config."""

from __future__ import annotations

import argparse
from importlib import import_module

from ..config import choices  # torch-free: the library is imported in the command that runs
from ..config import schema as cfg
from ..errors import VaelabError
from ..terminal import first_process, say
from .numbers import COUNT

# the config keys a flag overrides: every flag whose argparse dest is a key (--latent-dim: latent_dim), but --out,
# which names the run (or sweep) folder
OVERRIDES = frozenset(cfg.KEYS) - {"out"}
# --log NAME -> "module:class" of a per-epoch output (epochs.EpochOutput), imported only when asked for
LOGGERS = {"tensorboard": "vaelab.training.tensorboard_log:TensorBoardLog"}


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model (default: an MLP VAE on scikit-learn's digits)",
                       description="Train a model. Flags override --config; --set key=value covers every other key.")
    p.add_argument("--config", help=f"TOML file or shipped name ({', '.join(cfg.named_configs())})")
    p.add_argument("--data", help=" | ".join(choices.DATASETS))
    p.add_argument("--data-dir", help="folder with the dataset's files")
    p.add_argument("--model", choices=choices.MODELS)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--latent-dim", help="latent size, or one per stochastic layer bottom first (hvae: 40,20)")
    p.add_argument("--hidden", help="hidden sizes, e.g. 400 or 512,256")
    p.add_argument("--likelihood", choices=choices.LIKELIHOODS)
    p.add_argument("--posterior-scale", choices=choices.SCALES)
    p.add_argument("--estimator", choices=("sgvb-a", "sgvb-b", "iwae"))
    p.add_argument("--k", type=int, help="Monte-Carlo / importance samples per example in training")
    p.add_argument("--posterior", choices=choices.POSTERIORS, help="family of q(z|x) (default gaussian)")
    p.add_argument("--prior", choices=choices.PRIORS, help="p(z) (default normal; vamp: the VampPrior)")
    p.add_argument("--pseudo-inputs", type=int, help="the VampPrior's learned pseudo-inputs K (default 500)")
    p.add_argument("--flow", choices=choices.FLOWS, help="flow posterior on top of the Gaussian q(z|x) (default none)")
    p.add_argument("--flow-steps", type=int, help="flow steps N (default 2)")
    p.add_argument("--codes", metavar="RUN", help="code-prior: the trained vqvae run whose codes it models")
    p.add_argument("--encoder", metavar="PKG.MODULE:CLASS",
                   help="your own encoder class, imported (never unpickled); arguments: --set 'encoder_args={...}'")
    p.add_argument("--decoder", metavar="PKG.MODULE:CLASS",
                   help="your own decoder class, imported; arguments: --set 'decoder_args={...}'")
    p.add_argument("--noise", choices=choices.NOISES, help="dae corruption (default masking)")
    p.add_argument("--noise-level", type=float, help="masking: probability of zeroing an input; gaussian: std")
    p.add_argument("--noise-mean", type=float, help="gaussian noise mean mu_D (default 0)")
    p.add_argument("--save-every", type=int, help="also keep every N-th epoch's weights in RUN/epochs/")
    p.add_argument("--kl-warmup", type=int, help="epochs of linear KL warm-up")
    p.add_argument("--beta", type=float, help="β-VAE's KL weight in the loss (btcvae, factorvae: the total "
                   "correlation's); the logged bound stays the ELBO (default 1)")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--max-minutes", type=float,
                   help="training-time budget: stop before an epoch that could take the run past it (0: off)")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--image-size", type=int, help="side length for folder:PATH images")
    p.add_argument("--conditional", action="store_true", default=None,
                   help="a conditional VAE (Sohn et al. 2015): the one-hot class label enters encoder and decoder; "
                        "bounds are on log p(x | y) (model vae or iwae; labelled data)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="image colour channels: 1 grey, 3 RGB (folder:PATH converts; arrays must have them; "
                        "default: what the images are)")
    p.add_argument("--eval-k", type=int, help="importance samples for the final evaluation")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=choices.DEVICES)
    p.add_argument("--precision", choices=choices.PRECISIONS,
                   help="matrix products: auto (default; bf16/tf32 only where native and faster), fp32, tf32, bf16")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-NNN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run at --out")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    p.add_argument("--no-report", action="store_true", help="skip the final evaluation, plots and report")
    p.add_argument("--no-explorer", action="store_true", help="do not write RUN/explorer.html beside the report")
    p.add_argument("--log", action="append", default=[], choices=tuple(LOGGERS),
                   help="also log each epoch to: tensorboard (RUN/tensorboard/; needs the tensorboard package)")
    return p


def _sweep_parser(sub, train: argparse.ArgumentParser) -> None:
    # every train flag, shared with the train parser (parents=), so the two never drift apart
    p = sub.add_parser("sweep", parents=[train], add_help=False,
                       help="train many small models at once (seeds, a grid of configs), one run folder each",
                       description="Train several models at once on one device. Flags set the base config; "
                                   "--out names the sweep folder, which gets one run folder per model. "
                                   "--resume is refused: continue one swept run with `vaelab train --resume RUN`.")
    p.add_argument("--seeds", type=COUNT, metavar="N", help="N models with seeds SEED, SEED+1, ... (SEED: --seed, 0)")
    p.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                   help='config values to cross, e.g. lr=1e-3,3e-4 latent_dim=2,20 "hidden=512 256,400"')
    p.add_argument("--sequential", action="store_true", help="train the models one after another (no stacking)")


def _overrides(args: argparse.Namespace) -> dict:
    values = {key: v for key, v in vars(args).items() if key in OVERRIDES and v is not None}
    values |= cfg.parse_set(args.set)
    return values


def _outputs(names: list[str]) -> list:
    """The per-epoch outputs named by --log, built before any run folder is claimed (a missing package fails here)."""
    outputs = []
    for name in dict.fromkeys(names):
        module, _, cls = LOGGERS[name].partition(":")
        outputs.append(getattr(import_module(module), cls)())
    return outputs


def _train(args: argparse.Namespace) -> None:
    from .. import api

    values = _overrides(args)
    outputs = _outputs(args.log)
    progress = not args.quiet
    if args.resume:  # the library refuses a config or a key that may not change (training/session.py)
        run = api.train(args.config, resume=args.resume, finish=not args.no_report, progress=progress,
                        outputs=outputs, explorer=not args.no_explorer, **values)
    else:
        run = api.train(args.config, out=args.out, overwrite=args.overwrite, finish=not args.no_report,
                        progress=progress, outputs=outputs, explorer=not args.no_explorer, **values)
    if first_process():  # under torchrun, process 0 alone
        say(f"run folder: {run}")


def _sweep(args: argparse.Namespace) -> None:
    from ..sweeps.sweep import sweep as run_sweep

    if args.resume:
        raise VaelabError("a sweep cannot be resumed; continue one of its runs alone with `vaelab train --resume RUN`")
    root = run_sweep(args.config, seeds=args.seeds, grid=args.grid, out=args.out, overwrite=args.overwrite,
                     sequential=args.sequential, finish=not args.no_report, progress=not args.quiet,
                     outputs=_outputs(args.log), explorer=not args.no_explorer, **_overrides(args))
    if first_process():
        say(f"sweep folder: {root}")




def add_parsers(sub) -> None:
    """Add train and sweep (sweep shares every train flag)."""
    _sweep_parser(sub, _train_parser(sub))


COMMANDS = {"train": _train, "sweep": _sweep}
