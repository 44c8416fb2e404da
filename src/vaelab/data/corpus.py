"""Corpora as bags of words: OCTIS-style folders, folders of .txt files and 20 Newsgroups.

Each split is a sparse CSR tensor of word counts, (N, |V|) float32, densified per batch by
`rows`. The vocabulary comes from the corpus's vocabulary.txt when it has one, else from
scikit-learn's CountVectorizer fitted on the training documents (vocab_size, stop_words,
min_df, max_df). Documents left with no word of the vocabulary are dropped, and counted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from ..config.choices import CORPORA
from ..errors import DataError, unknown
from ..logs import info
from . import named
from .images import TEST_FRACTION, TEST_SEED, _hold_out
from .regular_files import open_regular

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CorpusData:
    """Word counts per split (sparse CSR), labels, the vocabulary and the label names.

    Offers what the trainer and evaluation read from ImageData (name, shape, splits, labels,
    scale); scale is 1 because the stored values are the counts themselves.
    """

    name: str
    shape: tuple[int, ...]  # (|V|,)
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    y_train: torch.Tensor | None
    y_val: torch.Tensor | None
    y_test: torch.Tensor | None
    vocabulary: tuple[str, ...]
    label_names: tuple[str, ...] | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # empty documents removed, per split
    scale: float = 1.0
    # the training documents' text, row for row (sliding-window NPMI needs their word order: topics/coherence.py)
    train_texts: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def dim(self) -> int:
        """Vocabulary size."""
        return self.shape[0]


def is_corpus(data: object) -> bool:
    """True for a bag-of-words dataset."""
    return isinstance(data, CorpusData)


def is_corpus_spec(spec: str) -> bool:
    """True when a --data value names a corpus."""
    return spec == "20newsgroups" or spec in named.NAMED or spec.startswith("corpus:")


def to_scipy(t: torch.Tensor) -> sp.csr_matrix:
    """Word counts (a sparse CSR or dense torch tensor) as a SciPy CSR matrix (float64), for scikit-learn."""
    t = t.cpu()
    if t.layout != torch.sparse_csr:
        return sp.csr_matrix(t.to_dense().double().numpy())
    return sp.csr_matrix((t.values().double().numpy(), t.col_indices().numpy(), t.crow_indices().numpy()),
                         shape=tuple(t.shape))


def _to_torch(m: sp.csr_matrix) -> torch.Tensor:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sort_indices()
    with warnings.catch_warnings():  # torch calls its CSR support beta; the few ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape)


# --- reading documents ----------------------------------------------------------------------

def _decode(name: str, path: Path, raw: bytes) -> str:
    """UTF-8 text (a BOM is dropped), or a DataError naming the file and line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{name}: {path} is not UTF-8 text (bad byte 0x{raw[e.start]:02x} on line {line})") from None


def _read(name: str, path: Path) -> bytes:
    """A corpus file's bytes; a FIFO, device or folder in its place is one DataError saying which."""
    with open_regular(path, f"{name}: {path}") as f:
        return f.read()


def _read_octis(name: str, root: Path) -> tuple[list[str], list[str], list[str] | None, list[str] | None]:
    """Texts, splits and labels from corpus.tsv, and the words of vocabulary.txt when present."""
    path = root / "corpus.tsv"
    texts, splits, labels = [], [], []
    for i, line in enumerate(_decode(name, path, _read(name, path)).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3):
            raise DataError(f"{name}: {path} line {i} has {len(parts)} tab-separated fields; "
                            "expected text<TAB>split[<TAB>label]")
        split = parts[1].strip()
        if split not in SPLITS:
            raise DataError(f"{name}: {path} line {i}: split must be train, val or test, not {split!r}")
        texts.append(parts[0])
        splits.append(split)
        labels.append(parts[2].strip() if len(parts) == 3 else None)
    have = [lab is not None for lab in labels]
    if any(have) and not all(have):
        raise DataError(f"{name}: {path} gives a label on some lines but not on line {have.index(False) + 1}")
    vocab = None
    vpath = root / "vocabulary.txt"
    if vpath.exists():
        vocab = [w.strip() for w in _decode(name, vpath, _read(name, vpath)).splitlines() if w.strip()]
        if not vocab:
            raise DataError(f"{name}: {vpath} is empty")
        seen: set[str] = set()
        for w in vocab:
            if w in seen:
                raise DataError(f"{name}: {vpath} lists {w!r} more than once")
            seen.add(w)
    return texts, splits, (labels if all(have) and labels else None), vocab


def _read_folder(name: str, root: Path) -> tuple[list[str], list[str] | None]:
    """One document per .txt file; files inside a subfolder take its name as their label."""
    top = sorted(p for p in root.glob("*.txt") if p.is_file())
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    nested = [(f, d.name) for d in subs for f in sorted(d.glob("*.txt")) if f.is_file()]
    if top and nested:
        raise DataError(f"{name}: .txt files sit both in the folder and in label subfolders; use one layout")
    files = nested or [(f, None) for f in top]
    texts = [_decode(name, f, f.read_bytes()) for f, _ in files]
    return texts, ([lab for _, lab in files] if nested else None)


def _fetch_20newsgroups(data_home: str | None) -> tuple[list[str], list[str], list[str]]:
    """20 Newsgroups through scikit-learn (headers, footers and quotes removed); cached by it."""
    from sklearn.datasets import fetch_20newsgroups  # lazy: slow import, only needed here

    texts, splits, labels = [], [], []
    for split in ("train", "test"):
        try:
            b = fetch_20newsgroups(data_home=data_home, subset=split, remove=("headers", "footers", "quotes"))
        except OSError as e:  # URLError and socket errors are OSErrors
            raise DataError(f"20newsgroups: not in scikit-learn's cache and the download failed "
                            f"(offline?): {e}") from None
        texts += list(b.data)
        splits += [split] * len(b.data)
        labels += [b.target_names[t] for t in b.target]
    return texts, splits, labels


# --- bags of words --------------------------------------------------------------------------

def _vectorizer(vocab: list[str] | None, vocab_size: int, stop_words: str, min_df: float, max_df: float):
    from sklearn.feature_extraction.text import CountVectorizer

    if vocab is not None:
        return CountVectorizer(vocabulary=vocab)
    # min_df >= 1 and max_df > 1 are document counts; smaller values are fractions (scikit-learn's rule)
    lo = int(min_df) if min_df >= 1 else min_df
    hi = int(max_df) if max_df > 1 else max_df
    return CountVectorizer(max_features=vocab_size or None, stop_words=None if stop_words == "none" else stop_words,
                           min_df=lo, max_df=hi)


def _labels(names: list[str] | None, order: tuple[str, ...] | None, keep: np.ndarray) -> torch.Tensor | None:
    if names is None or order is None:
        return None
    ids = {n: i for i, n in enumerate(order)}
    return torch.tensor([ids[names[i]] for i in keep], dtype=torch.int64)


def build(name: str, texts: list[str], splits: list[str], labels: list[str] | None, *,
          vocab: list[str] | None = None, vocab_size: int = 0, stop_words: str = "none", min_df: float = 1.0,
          max_df: float = 1.0, val_fraction: float = 0.1, split_seed: int = 0,
          log: Callable[[str], None] = info) -> CorpusData:
    """Bags of words for documents split into train/val/test; a missing test or val split is held out of train.

    The vocabulary is fitted on the training documents only, after the hold-outs.
    """
    if not texts:
        raise DataError(f"{name}: the corpus has no documents")
    split = np.array(splits)
    if not (split == "train").any():
        raise DataError(f"{name}: the corpus has no training documents (no line with split 'train')")
    if not (split == "test").any():  # hold out a fixed test set, as for image sources without one
        train = np.flatnonzero(split == "train")
        _, held = _hold_out(len(train), TEST_FRACTION, TEST_SEED)
        split[train[held]] = "test"
        log(f"{name}: no test split given; held out {len(held)} training documents as the test split")
    if not (split == "val").any() and val_fraction > 0:  # no val split given: hold one out of train
        train = np.flatnonzero(split == "train")
        keep, held = _hold_out(len(train), val_fraction, split_seed)
        if len(keep) == 0:
            raise DataError(f"{name}: {len(train)} training documents leave none after the validation split")
        split[train[held]] = "val"
    vec = _vectorizer(vocab, vocab_size, stop_words, min_df, max_df)
    train_texts = [t for t, s in zip(texts, split) if s == "train"]
    try:
        if vocab is None:
            vec.fit(train_texts)
        counts = vec.transform(texts).tocsr()  # (N, |V|) int64
    except ValueError as e:  # empty vocabulary, min_df above max_df, ...
        raise DataError(f"{name}: cannot build a vocabulary from the training documents ({e})") from None
    words = tuple(str(w) for w in vec.get_feature_names_out())
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    if vocab is not None and lengths[split == "train"].sum() == 0:
        raise DataError(f"{name}: no word of vocabulary.txt occurs in the training documents "
                        "(is it the vocabulary of another corpus?)")
    empty = lengths == 0
    dropped = {s: int((empty & (split == s)).sum()) for s in SPLITS}
    if empty.any():
        log(f"{name}: dropped {int(empty.sum())} documents with no word of the vocabulary "
            f"(train {dropped['train']}, val {dropped['val']}, test {dropped['test']})")
    index = {s: np.flatnonzero((split == s) & ~empty) for s in SPLITS}
    if len(index["train"]) == 0:
        raise DataError(f"{name}: every training document is empty after filtering the vocabulary")
    if len(index["test"]) == 0:
        raise DataError(f"{name}: every test document is empty after filtering the vocabulary")
    order = tuple(sorted(set(labels))) if labels is not None else None
    parts = {s: _to_torch(counts[index[s]]) for s in SPLITS}
    return CorpusData(name=name, shape=(len(words),), **parts,
                      y_train=_labels(labels, order, index["train"]), y_val=_labels(labels, order, index["val"]),
                      y_test=_labels(labels, order, index["test"]), vocabulary=words, label_names=order,
                      dropped=dropped, train_texts=tuple(texts[i] for i in index["train"]))


def load_corpus(spec: str, *, data_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                vocab_size: int = 0, stop_words: str = "none", min_df: float = 1.0, max_df: float = 1.0,
                log: Callable[[str], None] = info) -> CorpusData:
    """Load the corpus named by spec: `corpus:PATH` (OCTIS folder or .txt folder) or `20newsgroups`."""
    opts = dict(vocab_size=vocab_size, stop_words=stop_words, min_df=min_df, max_df=max_df,
                val_fraction=val_fraction, split_seed=split_seed, log=log)
    kind, _, path = spec.partition(":")
    if spec == "20newsgroups" or (kind == "corpus" and path == "20newsgroups" and not Path(path).exists()):
        return build("20newsgroups", *_fetch_20newsgroups(data_dir), **opts)
    if spec in named.NAMED:  # found through --data-dir, $VAELAB_DATA or the cache, never the working directory
        texts, splits, labels, vocab = _read_octis(spec, named.find(spec, data_dir))
        return build(spec, texts, splits, labels, vocab=vocab, **opts)
    if kind != "corpus" or not path:
        raise DataError(unknown("corpus", spec, CORPORA))
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{spec}: folder not found")
    if (root / "corpus.tsv").exists():  # a FIFO or a folder by that name is refused, not skipped
        texts, splits, labels, vocab = _read_octis(spec, root)
        return build(spec, texts, splits, labels, vocab=vocab, **opts)
    texts, labels = _read_folder(spec, root)
    if not texts:
        raise DataError(f"{spec}: no documents (expected {root}/corpus.tsv, {root}/*.txt or {root}/<label>/*.txt)")
    return build(spec, texts, ["train"] * len(texts), labels, **opts)
