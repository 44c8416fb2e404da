"""The names a config value may take: one list each, read by the config's checks, the CLI's --help and errors.

Torch-free, so the CLI can offer them before it imports the library. Where the names are the keys of a registry
dict (models, priors, posteriors, likelihoods, flows, noises, objectives, plot kinds, baselines, sigma scales), they
are read from that file's source rather than imported (the registries import torch): a new one is its code and one
registry entry, nothing here. The other lists (datasets, devices, precisions) live here, and tests check them
against the code that implements them.
"""

import ast
import io
import re
import tokenize
from pathlib import Path


def _dict_literal(module: str, name: str) -> tuple[Path, ast.Dict]:
    """The dict literal `name = {...}` at the top level of vaelab/<module>; only that statement is read, so
    `vaelab --help` stays fast."""
    path = Path(__file__).parent.parent / module
    text = path.read_text(encoding="utf-8")
    start = re.search(rf"^{name}\b[^=\n]*=\s*{{", text, re.MULTILINE)
    node = None
    if start:  # the statement ends at the tokenizer's first logical line end (brackets, strings and comments known)
        rest = text[start.start():]
        end = next(t.end for t in tokenize.generate_tokens(io.StringIO(rest).readline) if t.type == tokenize.NEWLINE)
        node = ast.parse("\n".join(rest.splitlines()[:end[0]])).body[0]
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(node.value, ast.Dict):
        raise RuntimeError(f"{path}: no dict literal {name} = {{...}} at the top level")
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.value.keys):
        raise RuntimeError(f"{path}: every key of {name} must be a string literal (the command line reads them)")
    return path, node.value


def registered(module: str, name: str) -> tuple[str, ...]:
    """The keys, in order, of the registry dict `name` in vaelab/<module> (e.g. "models/registry.py")."""
    return tuple(k.value for k in _dict_literal(module, name)[1].keys)


def registered_docs(module: str, name: str) -> dict[str, str]:
    """{key: doc} of the registry dict `name` in vaelab/<module> whose values are calls with a string literal doc
    as their second argument, e.g. `"single": Baseline(_single, "one Bernoulli ..."),`."""
    path, d = _dict_literal(module, name)
    docs = {}
    for k, v in zip(d.keys, d.values, strict=True):
        if not (isinstance(v, ast.Call) and len(v.args) > 1 and isinstance(v.args[1], ast.Constant)
                and isinstance(v.args[1].value, str)):
            raise RuntimeError(f"{path}: {name}[{k.value!r}] must be a call whose second argument is a string literal")
        docs[k.value] = v.args[1].value
    return docs


MODELS = registered("models/registry.py", "MODELS")
# normal, laplace, dirichlet-laplace (the Laplace approximation of Dirichlet(alpha)), vamp (the VampPrior: a mixture
# of q(z|u_k) at learned pseudo-inputs)
PRIORS = registered("models/priors.py", "PRIORS")
POSTERIORS = registered("distributions/families.py", "POSTERIORS")
# multinomial: word counts; categorical: 256 grey levels, for the autoregressive models (pixelcnn, pixel-vae)
LIKELIHOODS = tuple(dict.fromkeys(registered("distributions/densities.py", "LIKELIHOODS")
                                  + registered("models/pixel/sampling.py", "KINDS")))
FLOWS = ("none",) + registered("models/flows.py", "FLOWS")  # flow posteriors on top of the Gaussian q(z|x)
NOISES = registered("distributions/corruption.py", "NOISES")  # denoising autoencoder corruption
# ae, dae, exact, vq, btcvae, factorvae: only for the models that fix them
ESTIMATORS = registered("estimators/objectives.py", "OBJECTIVES")
PLOT_KINDS = registered("reports/views.py", "KINDS")
BASELINES = registered_docs("baselines/mixtures.py", "BASELINES")
SCALES = registered("distributions/densities.py", "SCALE_FNS")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "tf32", "bf16")  # see runtime/precision.py
# every --data value: the one list `--help`, error messages and data/ read (data/images.py, data/corpus.py); its
# names are loaders' branches with PATH arguments, not a registry: tests/config/test_choices.py loads each
IMAGE_DATASETS = ("digits", "shapes", "mnist", "fashion-mnist", "photo-patches", "npz:PATH", "folder:PATH",
                  "npy:DIR")
CORPORA = registered("data/named.py", "NAMED") + ("corpus:PATH", "20newsgroups")  # named: downloaded, checksummed
DATASETS = IMAGE_DATASETS + CORPORA
COVARIANCES = ("full", "diag")

