"""The family commands of the CLI: baseline, amortization-gap, compare. Parse -> library call -> print."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import choices
from ..config import schema as cfg  # the rest is imported where used: building the parser must not import torch
from ..terminal import say
from .numbers import COUNT, FLOAT32_MAX, INDEX, SEED, Number

# data keys a baseline copies from --like RUN, so it scores exactly that run's test points (and an LDA
# baseline counts NPMI as the run does)
DATA_KEYS = ("data", "data_dir", "likelihood", "binarize", "dequantize", "val_fraction", "seed", "image_size",
             "vocab_size", "stop_words", "min_df", "max_df", "npmi_window", "npmi_reference")


def add_parsers(sub) -> None:
    """Add the baseline, amortization-gap and compare subcommands."""
    p = sub.add_parser("baseline", help="fit a non-neural baseline (the ladder's lower rungs); "
                       "writes DIR/baseline.json",
                       description="Fit on train and report the exact test NLL on the same test points as a VAE.")
    p.add_argument("--model", required=True, choices=tuple(choices.BASELINES),
                   help="; ".join(f"{k}: {doc}" for k, doc in choices.BASELINES.items()))
    p.add_argument("--data", help="dataset, as for train (default digits)")
    p.add_argument("--data-dir")
    p.add_argument("--likelihood", choices=choices.LIKELIHOODS, help="the family to match (default bernoulli)")
    p.add_argument("--dequantize", action="store_true", help="Gaussian data: uniform dequantization, as "
                   "`train --set dequantize=true`")
    p.add_argument("--like", metavar="RUN", help="copy data, likelihood and binarization/dequantization from a run")
    p.add_argument("--components", type=COUNT, default=10, help="mixture components or LDA topics (default 10)")
    p.add_argument("--covariance", choices=choices.COVARIANCES, default="full", help="Gaussian families")
    p.add_argument("--max-iter", type=COUNT, default=100, help="EM (or LDA's variational Bayes) iterations at most")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", required=True, help="folder for baseline.json")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("amortization-gap",
                       help="amortized vs per-point optimised ELBO; writes RUN/amortization_gap.json")
    p.add_argument("run")
    p.add_argument("--steps", type=COUNT, default=500, help="Adam steps per point (default 500)")
    p.add_argument("--points", type=COUNT, default=100, help="test points (the first P; default 100)")
    p.add_argument("--epoch", type=INDEX, help="use RUN/epochs/epoch-N.safetensors (kept by --save-every; "
                   "default: the run's model.safetensors)")
    p.add_argument("--lr", type=Number(float, 0, FLOAT32_MAX, low_open=True), default=1e-2)
    p.add_argument("--samples", type=COUNT, default=8, help="Monte-Carlo samples per optimisation step")
    p.add_argument("--k", type=COUNT, default=1000, help="samples for the final ELBO and IWAE estimates")
    p.add_argument("--device", choices=choices.DEVICES, default="cpu")

    p = sub.add_parser("compare", help="one Markdown + HTML table of runs and baselines, ranked by test NLL")
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--baseline", action="append", default=[], metavar="DIR", help="a baseline folder (repeatable)")
    p.add_argument("--out", help="folder for compare.md and compare.html (default comparison-NAME+NAME... from the "
                   "compared folders' names, in the working folder)")
    p.add_argument("--overwrite", action="store_true", help="replace the comparison already in --out")
    p.add_argument("--update-reports", action="store_true",
                   help="also give each run a comparison.json and rewrite its report.html to show its row")


def _baseline(args: argparse.Namespace) -> None:
    from ..baselines import mixtures as baselines
    from ..runs import loading

    values = {}
    if args.like:
        values = {k: v for k, v in loading.load_config(args.like).to_dict().items() if k in DATA_KEYS}
    for key in ("data", "data_dir", "likelihood"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.dequantize:
        values["dequantize"] = True
    c = cfg.from_dict(values)
    options = baselines.Options(components=args.components, covariance=args.covariance, max_iter=args.max_iter,
                                seed=args.seed)
    r = baselines.fit(args.model, c, options, args.out, overwrite=args.overwrite)
    say(f"baseline {args.model}: {r.get('family', '')}")
    say(f"  {r['test_inputs']}")
    for key in ("nll", "val_nll", "train_nll", "bits_per_dim", "perplexity", "nll_elbo", "perplexity_elbo",
                "unigram_perplexity", "npmi", "diversity", "purity", "params",
                "iterations", "seconds"):
        if key in r:
            v = r[key]
            say(f"  {key:<18} {v:>12.4f}" if isinstance(v, float) else f"  {key:<18} {v:>12}")
    say(f"wrote {Path(args.out) / 'baseline.json'}")


def _gap(args: argparse.Namespace) -> None:
    from ..estimators import amortization_gap as amortize

    r = amortize.run_gap(args.run, epoch=args.epoch, points=args.points, steps=args.steps, lr=args.lr,
                         samples=args.samples, k=args.k, device=args.device)
    say(f"{args.run} ({r['weights']}, epoch {r['epoch']}), {r['points']} test points, nats per point")
    say(f"  amortized ELBO   {r['amortized_elbo']:12.4f}   ({r['seconds_per_point_amortized'] * 1e3:.3f} ms/point)")
    say(f"  optimised ELBO   {r['optimized_elbo']:12.4f}   ({r['seconds_per_point_optimized'] * 1e3:.3f} ms/point,"
          f" {r['steps']} steps)")
    say(f"  gap              {r['gap']:12.4f}   ({r['points_with_negative_gap']} points below 0)")
    say(f"  IWAE-{r['k']:<10} {r['iwae']:12.4f}   (approximation gap {r['approximation_gap']:.4f})")
    say(f"wrote {Path(args.run) / 'amortization_gap.json'}")


def _compare(args: argparse.Namespace) -> None:
    from ..reports import compare

    rows, out = compare.compare(args.runs, args.baseline, args.out, update_runs=args.update_reports,
                                overwrite=args.overwrite)
    say(compare.markdown(rows), end="")
    say(f"wrote {out / 'compare.md'} and {out / 'compare.html'}"
        + (f"; updated the report of {len(args.runs)} run(s)" if args.runs and args.update_reports else ""))


COMMANDS = {"baseline": _baseline, "amortization-gap": _gap, "compare": _compare}

