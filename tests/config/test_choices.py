"""config/choices.py: one list of each name. A registry's names are its dict's keys, read from the source without
importing torch; the dataset names, which are loader branches with PATH arguments, are checked against the loaders."""

import ast
import inspect
import textwrap

import pytest

from vaelab.config import choices
from vaelab.config.choices import registered, registered_docs
from vaelab.errors import DataError, unknown


def test_each_list_is_its_registrys_keys_in_order():
    from vaelab import models
    from vaelab.baselines import mixtures
    from vaelab.data import named
    from vaelab.distributions import corruption, densities, families
    from vaelab.estimators import objectives
    from vaelab.models import flows, priors
    from vaelab.models.pixel import sampling
    from vaelab.reports import views

    assert choices.MODELS == tuple(models.MODELS)
    assert choices.PRIORS == tuple(priors.PRIORS)
    assert choices.POSTERIORS == tuple(families.POSTERIORS)
    assert choices.LIKELIHOODS == tuple(dict.fromkeys([*densities.LIKELIHOODS, *sampling.KINDS]))
    assert choices.FLOWS == ("none", *flows.FLOWS)
    assert choices.NOISES == tuple(corruption.NOISES)
    assert choices.ESTIMATORS == tuple(objectives.OBJECTIVES)
    assert choices.PLOT_KINDS == tuple(views.KINDS)
    assert choices.BASELINES == {name: b.doc for name, b in mixtures.BASELINES.items()}
    assert choices.SCALES == tuple(densities.SCALE_FNS)
    assert choices.CORPORA[:len(named.NAMED)] == tuple(named.NAMED)


def test_the_lists_are_what_they_were():
    """The names the restructuring read from the registries are the names the hand-kept lists held."""
    assert choices.POSTERIORS == ("gaussian", "laplace", "logistic", "student-t", "gumbel")
    assert choices.LIKELIHOODS == ("bernoulli", "gaussian", "gaussian-learned", "multinomial", "categorical")
    assert choices.FLOWS == ("none", "planar", "iaf")
    assert choices.NOISES == ("masking", "gaussian")
    assert choices.ESTIMATORS == ("sgvb-a", "sgvb-b", "iwae", "ae", "dae", "exact", "vq", "btcvae", "factorvae")
    assert choices.PLOT_KINDS == ("curves", "recon", "samples", "latent", "manifold", "interp", "topics",
                                  "latent-epochs", "traversal")
    assert tuple(choices.BASELINES) == ("single", "mixture", "lda")
    assert choices.SCALES == ("exp", "softplus", "relu")
    assert choices.CORPORA == ("bbc_news", "corpus:PATH", "20newsgroups")


def _source(tmp_path, text: str) -> str:
    path = tmp_path / "registry.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)  # an absolute path: Path(vaelab) / it is it


def test_the_reader_takes_one_line_and_nested_dicts_and_only_the_top_level(tmp_path):
    src = _source(tmp_path, '''
        class A:
            R = {"inner": 1}
        ONE = {"a": 1, "b": {"c": 2}}  # one line
        R: dict[str, object] = {
            "x": f({
        1: 2
        }),
            "y": "}",
        }
        LATER = 3
        ''')
    assert registered(src, "ONE") == ("a", "b")
    assert registered(src, "R") == ("x", "y")  # a `}` at a line start inside a value does not end it
    with pytest.raises(RuntimeError, match="no dict literal NONE"):
        registered(src, "NONE")
    with pytest.raises(RuntimeError, match="no dict literal LATER"):
        registered(src, "LATER")


@pytest.mark.parametrize("body", ['{1: "a"}', '{**OTHER, "a": 1}', '{NAME: 1}'])
def test_the_reader_refuses_keys_the_command_line_cannot_read(tmp_path, body):
    with pytest.raises(RuntimeError, match="must be a string literal"):
        registered(_source(tmp_path, f"R = {body}\n"), "R")


def test_the_docs_reader_takes_the_second_argument_and_refuses_a_missing_one(tmp_path):
    src = _source(tmp_path, '''
        B = {
            "one": Baseline(fit, "first line, "
                                 "second line", likelihood="x"),
        }
        BAD = {"two": Baseline(fit, doc="keyword")}
        ''')
    assert registered_docs(src, "B") == {"one": "first line, second line"}
    with pytest.raises(RuntimeError, match=r"BAD\['two'\] must be a call"):
        registered_docs(src, "BAD")


class Reached(Exception):
    """A dataset's own loader was called."""


@pytest.fixture
def loaders(monkeypatch):
    """Every leaf loader of data/images.py and data/corpus.py replaced by one that raises Reached: nothing is read."""
    from vaelab.data import corpus, images

    def reach(*args, **kwargs):
        raise Reached()

    for module, name in [(images, "_digits"), (images, "_shapes"), (images, "_idx"), (images, "_npz"),
                         (images, "load_npy"), (images, "_folder"), (images.photos, "patches"),
                         (corpus, "_fetch_20newsgroups"), (corpus.named, "find"), (corpus, "build")]:
        monkeypatch.setattr(module, name, reach)
    return images, corpus


@pytest.mark.parametrize("name", choices.DATASETS)
def test_every_listed_dataset_has_a_loader(loaders, tmp_path, name):
    images, corpus = loaders
    spec = name.replace(":PATH", f":{tmp_path}").replace(":DIR", f":{tmp_path}")
    load = corpus.load_corpus if corpus.is_corpus_spec(spec) else images.load_images
    with pytest.raises((Reached, DataError)) as e:
        load(spec, data_dir=str(tmp_path))
    assert e.type is Reached or "unknown" not in str(e.value), str(e.value)  # corpus:PATH: empty folder refused


def test_every_name_a_loader_knows_is_listed():
    """The string constants the loaders compare a --data value (or its KIND: prefix) with are listed names."""
    from vaelab.data import corpus, images

    listed = {n.split(":")[0] for n in choices.DATASETS}
    known = set()
    for f in (images.load_images, images._load, corpus.load_corpus, corpus.is_corpus_spec):
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(f)))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id in ("spec", "kind"):
                for c in node.comparators:
                    known |= {e.value for e in ast.walk(c) if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "startswith":
                known |= {a.value.rstrip(":") for a in node.args if isinstance(a, ast.Constant)}
    assert known >= {"digits", "mnist", "npz", "corpus", "20newsgroups"}  # the walk found the branches
    assert known <= listed, known - listed
    assert images.photos.NAME in choices.IMAGE_DATASETS


def test_an_unlisted_dataset_is_refused_by_the_loader(loaders):
    images, _ = loaders
    with pytest.raises(DataError) as e:
        images.load_images("cifar-99")
    assert str(e.value) == unknown("dataset", "cifar-99", choices.DATASETS)
