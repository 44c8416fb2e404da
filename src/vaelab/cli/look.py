"""The commands that look at a trained run: evaluate, plot, report, topics; and bench, configs."""

from __future__ import annotations

import argparse

from ..config import choices  # torch-free: the library is imported in the command that runs
from ..config import schema as cfg
from ..errors import VaelabError
from ..runs import metrics
from ..runs.folder import RunFolder
from ..terminal import say
from .numbers import COUNT, INDEX, Number


def add_parsers(sub) -> None:
    """Add evaluate, plot, report, topics, bench and configs."""
    p = sub.add_parser("evaluate", help="ELBO, IWAE-k and NLL-k on a split; keeps each in RUN/evals/, "
                       "RUN/eval.json shows the most accurate")
    p.add_argument("run")
    p.add_argument("--k", type=COUNT, default=None, help="importance samples (default: the run's eval_k)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--batch", type=COUNT, default=None, help="points per chunk (default: sized to memory)")
    p.add_argument("--points", type=COUNT, default=None,
                   help="score only the split's first N points (when NLL-k of all of them takes too long); "
                        "kept apart from whole-split evaluations (default: all)")
    p.add_argument("--precision", choices=choices.PRECISIONS, default="fp32",
                   help="matrix products: fp32, or lower when asked: bf16, tf32 (CUDA), auto (training's table); "
                        "the bounds' sums stay float64, and a lower precision is kept apart (evals/...-bf16.json)")
    p.add_argument("--device", choices=choices.DEVICES, help="(default: the run's own device setting)")
    p.add_argument("--noise", choices=choices.NOISES,
                   help="also score reconstructing the clean x from one seeded corruption (a dae's own by default)")
    p.add_argument("--noise-level", type=Number(float, 0), default=0.25, help="masking probability or gaussian std")
    p.add_argument("--noise-mean", type=Number(float), default=0.0, help="gaussian noise mean")
    p.add_argument("--npmi-window", type=Number(int, 0), default=None,
                   help="document models: NPMI co-occurrence in sliding windows of N tokens (10 as in Roeder et al. "
                        "2015's C_NPMI); 0: whole documents (default: the run's npmi_window, 0 unless set)")
    p.add_argument("--npmi-reference", default=None, metavar="PATH",
                   help="document models: NPMI's reference corpus, a text file with one document per line or a "
                        "folder of .txt files; '' for the training split (default: the run's npmi_reference)")
    p.add_argument("--disentanglement", action="store_true",
                   help="instead of the bounds: MIG, DCI, SAP and the FactorVAE score of the codes against the data's "
                        "ground-truth factors (data shapes), into RUN/evals/test-factors.json")

    p = sub.add_parser("plot", help="write PNGs under RUN/plots/")
    p.add_argument("run")
    p.add_argument("--kind", required=True, choices=choices.PLOT_KINDS + ("all",))
    p.add_argument("--range", type=Number(float, count=4),
                   help="manifold: a linear grid X0,X1,Y0,Y1 (e.g. -10,5,-5,5) instead of the prior's quantiles")
    p.add_argument("--class", dest="y", type=INDEX, default=None, metavar="Y",
                   help="manifold, interp, traversal of a conditional model: the class y they decode with "
                        "(interp and traversal start from test images of that class), a number (default 0)")
    p.add_argument("--device", choices=choices.DEVICES, default="cpu")
    p.add_argument("--epoch", type=INDEX, help="draw with the weights kept for epoch N (--save-every) into "
                                             "<kind>-epoch-NNN.png")

    p = sub.add_parser("report", help="write RUN/report.html with every plot embedded")
    p.add_argument("run")

    p = sub.add_parser("topics", help="print a document model's topics (top words per topic; NVDM: both ends of "
                                      "each latent dimension), or with --docs the topic mixtures of new texts")
    p.add_argument("run")
    p.add_argument("--top", type=COUNT, default=10, help="words per topic or end (default 10)")
    p.add_argument("--docs", metavar="PATH", help="a text file, one document per line: print each one's topic "
                   "mixture (NVDM: latent code) and top topics, and write them as CSV")
    p.add_argument("--out", metavar="CSV", help="with --docs: the CSV to write (default RUN/doc_topics.csv)")
    p.add_argument("--device", choices=choices.DEVICES, default="cpu")

    p = sub.add_parser("bench", help="time vaelab against reference loops, side by side, on this machine",
                       description="W1 training (pytorch/examples loop vs vaelab) and NLL-k evaluation "
                                   "(one point at a time vs vaelab), on Fashion-MNIST.")
    p.add_argument("--what", choices=("train", "eval", "all"), default="all")
    p.add_argument("--epochs", type=COUNT, default=3, help="train: epochs per run")
    p.add_argument("--rounds", type=COUNT, default=2, help="train: times each side runs, taking turns")
    p.add_argument("--precision", choices=choices.PRECISIONS, default="auto", help="train: vaelab's matmul precision")
    p.add_argument("--k", type=COUNT, default=5000, help="eval: importance samples per point")
    p.add_argument("--ref-points", type=COUNT, default=200, help="eval: points the one-point loop is timed on")
    p.add_argument("--run", help="eval: a trained run to evaluate (default: train a W1 model for one epoch)")
    p.add_argument("--device", choices=choices.DEVICES, default="auto")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST files")

    sub.add_parser("configs", help="list the shipped experiment configs")


def _evaluate(args: argparse.Namespace) -> None:
    from .. import api
    from ..distributions.corruption import Noise
    from ..runtime import parallel

    if args.disentanglement:
        _disentanglement(args)
        return
    noise = Noise(args.noise, args.noise_level, args.noise_mean) if args.noise else None
    r = api.evaluate(args.run, k=args.k, split=args.split, device=args.device, batch=args.batch,
                     progress=not args.quiet, precision=args.precision, noise=noise, points=args.points,
                     npmi_window=args.npmi_window, npmi_reference=args.npmi_reference)
    if not parallel.world_from_env().writes:  # under torchrun process 0 alone reports (and wrote)
        return
    which = f"the first {r['n']} of {r['split_points']}" if "split_points" in r else r["n"]
    say(f"{r['model']} on {r['data']} ({r['split']} split, {which} examples), nats per example, "
        f"{r['precision']} matrix products" + (f", {r['processes']} processes" if "processes" in r else ""))
    if "conditional" in r:  # Sohn et al. 2015's CVAE
        say(f"  conditional on {r['conditional']['on']}: ELBO, IWAE and NLL bound log p(x | y)")
    # said in the line above, or context
    shown = ("split", "model", "data", "likelihood", "n", "split_points", "k", "words", "precision")
    for key in metrics.order(k for k, v in r.items() if k in metrics.METRICS and k not in shown):
        if key in r:
            name = metrics.label(key, r.get("k", "exact"))  # no k: an exact likelihood (NLL-exact)
            val = r[key]
            if isinstance(val, dict):  # per layer: z1 ... zL
                val = "  ".join(f"{n} {v:.4f}" if isinstance(v, float) else f"{n} {v}" for n, v in val.items())
            say(f"  {name:<18} {val:>12.4f}" if isinstance(val, float) else f"  {name:<18} {val:>12}")
    if "noise" in r:
        say(f"  clean x from noisy inputs ({r['noise']}): -log p(x | f(x~)) {r['noisy_recon_error']:.4f}, "
              f"squared error {r['noisy_squared_error']:.4f}")
    folder = RunFolder(args.run)
    shown = folder.history.read_eval() or {}
    say(f"wrote {folder.history.eval_file(r)}; {folder.eval_path} shows the {shown.get('split')} split"
          + (f" at k={shown['k']}" if "k" in shown else "") + " (the most accurate for the current weights)")


def _disentanglement(args: argparse.Namespace) -> None:
    from .. import api

    r = api.disentanglement(args.run, device=args.device)
    say(f"{r['model']} on {r['data']}: codes of {r['n_fit']} train points (fit) and {r['n']} test points (scored), "
        f"factors {', '.join(r['factor_names'])}")
    for key, text in r["estimators"].items():
        say(f"  {key:<20} {r[key]:8.4f}   {text}")
    say(f"wrote {RunFolder(args.run).history.factors_path(r['split'])}")


CLASS_KINDS = ("manifold", "interp", "traversal")  # the plot kinds a conditional model draws for one class


def _plot(args: argparse.Namespace) -> None:
    from ..reports import views

    span = args.range  # (X0, X1, Y0, Y1), finite (the flag's type)
    if args.y is not None and args.kind not in CLASS_KINDS + ("all",):
        raise VaelabError(f"--class chooses the class a conditional model's {', '.join(CLASS_KINDS)} decode with; "
                          f"plot kind {args.kind} takes none")
    view = views.RunView(args.run, args.device, epoch=args.epoch)
    kinds = view.kinds() if args.kind == "all" else (args.kind,)
    for kind in kinds:
        try:
            kw = ({"span": span} if kind == "manifold" else {}) | ({"y": args.y} if kind in CLASS_KINDS else {})
            path = view.make(kind, **kw)
        except VaelabError as e:
            if args.kind != "all":
                raise
            say(f"skipped {kind}: {e}")  # e.g. image plots of a document model
            continue
        say(f"wrote {path}")


def _topics(args: argparse.Namespace) -> None:
    if args.docs is not None:
        from ..topics import encode as doc_topics

        say(f"wrote {doc_topics.run_docs(args.run, args.docs, args.out, args.device)}")
        return
    from ..reports import views
    from ..topics import scores

    say(scores.format_table(views.RunView(args.run, args.device).topic_table(args.top)))


def _bench(args: argparse.Namespace) -> None:
    from ..bench import timings as bench

    if args.what in ("train", "all"):
        bench.train_w1(args.epochs, args.rounds, args.device, args.data_dir, say, args.precision)
    if args.what in ("eval", "all"):
        bench.eval_nll(args.run, args.k, args.ref_points, args.device, args.data_dir, say)


def _report(args: argparse.Namespace) -> None:
    from .. import api

    say(f"wrote {api.report(args.run)}")


COMMANDS = {"evaluate": _evaluate, "plot": _plot, "report": _report, "topics": _topics, "bench": _bench,
            "configs": lambda args: say("\n".join(cfg.named_configs()))}
