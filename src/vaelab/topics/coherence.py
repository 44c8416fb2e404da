"""NPMI topic coherence: its reference corpus, its co-occurrence window, and the score.

NPMI(w, w') = log(P(w, w') / (P(w) P(w'))) / -log P(w, w')   (Bouma 2009), -1 for words that never co-occur,
where P is the share of the reference corpus's co-occurrence units that hold the words. A topic's NPMI is
the mean over the pairs of its top words; a model's, the mean over its topics. Two choices set the number,
and papers differ in both:

  reference corpus  the training split (the default), or an external corpus (npmi_reference = PATH: a
                    UTF-8 text file with one document per line, or a folder of .txt files, one document each)
  window            0 (the default): a unit is a whole document, so P(w) is the share of documents holding w.
                    Document co-occurrence on the training split is the convention of the ETM's code
                    (Dieng et al. 2020).
                    N >= 2: a unit is every run of N consecutive tokens of a document (a document of N tokens
                    or fewer is one unit): the boolean sliding window of Roeder et al. (2015), whose C_NPMI
                    (Palmetto; gensim's "c_npmi") takes N = 10 over a Wikipedia reference corpus.

Reference documents are read as scikit-learn's CountVectorizer reads them (lower case, words of two
characters or more); a word outside the vocabulary keeps its place in a window but is never scored, and a
document with no word of the vocabulary is left out, as the corpus loader leaves it out. C_NPMI adds
epsilon = 1e-12 inside its logarithms; here a pair that never co-occurs scores exactly -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from ..data import CorpusData
from ..data.corpus import to_scipy
from ..errors import VaelabError

TRAINING_SPLIT = "the training split"


@dataclass(frozen=True)
class Reference:
    """The units NPMI counts co-occurrence in: the documents of a corpus, or sliding windows over them.

    Either `counts` (N, |V|) word counts (whole documents only) or `tokens`, each document's word ids in
    reading order (-1 for a word outside the vocabulary), is given.
    """

    name: str  # TRAINING_SPLIT or the external corpus's path
    window: int  # 0: the whole document
    counts: sp.csr_matrix | None = None
    tokens: tuple[np.ndarray, ...] | None = None

    def presence(self, words: np.ndarray) -> sp.csc_matrix:
        """(units, n) 1.0 where a unit holds word words[j], else 0."""
        words = np.asarray(words, dtype=np.int64)
        if self.tokens is None:
            return (self.counts[:, words] > 0).astype(np.float64).tocsc()
        return _window_presence(self.tokens, words, self.window)

    def describe(self) -> str:
        """The convention in words, for estimator notes and tables."""
        where = "the whole document (document co-occurrence)" if self.window == 0 else \
            f"a sliding window of {self.window} tokens (boolean, Roeder et al. 2015)"
        return f"reference corpus: {self.name}; window: {where}"


def _window_presence(tokens: Sequence[np.ndarray], words: np.ndarray, window: int) -> sp.csc_matrix:
    """Which units hold each of `words`, (units, n): every window of `window` tokens, or whole documents (0)."""
    size = max([int(t.max()) for t in tokens if len(t)] + [int(words.max(initial=-1))]) + 1
    column = np.full(size, -1, dtype=np.int64)  # word id -> its column, -1 for words not asked about
    column[words] = np.arange(len(words))
    rows, cols, offset = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    for t in tokens:
        n_units = max(1, len(t) - window + 1) if window else 1
        pos = np.flatnonzero(t >= 0)
        pos = pos[column[t[pos]] >= 0]  # (m,) positions of asked-about words
        if window and len(t) > window:  # the token at p lies in the windows that start at p-window+1 .. p
            lo, hi = np.maximum(0, pos - window + 1), np.minimum(pos, n_units - 1)
        else:
            lo = hi = np.zeros_like(pos)
        span = hi - lo + 1  # (m,) windows per position
        # unit lo, lo+1, ..., hi for each position: a running count, shifted to each position's lo
        first = np.cumsum(span) - span  # where each position's units begin in the running count
        rows.append(offset + np.arange(int(span.sum())) + np.repeat(lo - first, span))
        cols.append(np.repeat(column[t[pos]], span))
        offset += n_units
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.csc_matrix((np.ones(len(r)), (r, c)), shape=(offset, len(words)))
    m.data[:] = 1.0  # a word twice in a unit is still one unit holding it
    return m


def npmi(top: np.ndarray | list, reference: Reference | torch.Tensor) -> np.ndarray:
    """Mean NPMI of each row's word pairs, (T,), in [-1, 1]; top is (T, n) word indices (or T lists of any lengths).

    reference: a Reference, or word counts (N, |V|) of documents (whole-document co-occurrence).
    Words in every unit are perfectly associated (NPMI 1).
    """
    if not isinstance(reference, Reference):
        reference = Reference(TRAINING_SPLIT, 0, counts=to_scipy(reference))
    lists = [np.asarray(words, dtype=np.int64) for words in top]
    asked = np.unique(np.concatenate(lists)) if lists else np.zeros(0, np.int64)
    present = reference.presence(asked) if len(asked) else None  # (units, len(asked))
    out = np.empty(len(lists))
    for t, words in enumerate(lists):
        sub = present[:, np.searchsorted(asked, words)].toarray()  # (units, n)
        joint = (sub.T @ sub) / sub.shape[0]  # (n, n); the diagonal holds P(i)
        p = np.diag(joint)
        i, j = np.triu_indices(len(words), 1)
        pij = joint[i, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(pij > 0, np.log(pij / (p[i] * p[j])) / -np.log(pij), -1.0)
        score = np.where(pij >= 1.0, 1.0, score)  # words in every unit: perfectly associated
        out[t] = float(score.mean()) if len(score) else 0.0
    return out


def reference(data: CorpusData, window: int = 0, path: str | None = None) -> Reference:
    """The reference corpus of data's topics: its training split, or the documents at `path`."""
    if window < 0 or window == 1:
        raise VaelabError(f"npmi_window must be 0 (whole documents) or a window of at least 2 tokens, not {window}")
    if not path:
        if window == 0:
            return Reference(TRAINING_SPLIT, 0, counts=to_scipy(data.train))
        if len(data.train_texts) != data.train.shape[0]:
            raise VaelabError("npmi_window needs the training documents' text, which this corpus no longer has")
        return Reference(TRAINING_SPLIT, window, tokens=token_ids(data.train_texts, data.vocabulary))
    texts = read_reference(path)
    ids = [t for t in token_ids(texts, data.vocabulary) if (t >= 0).any()]
    if not ids:
        raise VaelabError(f"npmi_reference {path}: no document holds a word of the run's vocabulary")
    return Reference(str(path), window, tokens=tuple(ids))


def token_ids(texts: Sequence[str], vocabulary: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Each text's words as vocabulary indices in reading order, -1 for a word outside the vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer  # lazy: slow import

    index = {w: i for i, w in enumerate(vocabulary)}
    tokenize = CountVectorizer().build_analyzer()
    return tuple(np.fromiter((index.get(w, -1) for w in tokenize(text)), dtype=np.int64) for text in texts)


def check_path(path: str | Path) -> None:
    """Refuse an npmi_reference that names no file or folder (before a run trains, not after)."""
    root = Path(path).expanduser()
    if not (root.is_file() or root.is_dir()):
        raise VaelabError(f"npmi_reference {path}: no such file or folder")


def read_reference(path: str | Path) -> list[str]:
    """The documents of an external reference corpus: the lines of a text file, or the .txt files of a folder."""
    root = Path(path).expanduser()
    if root.is_dir():
        files = sorted(p for p in root.rglob("*.txt") if p.is_file())
        if not files:
            raise VaelabError(f"npmi_reference {path}: the folder has no .txt files (one document each)")
        return [_read_text(f, path) for f in files]
    check_path(root)
    lines = [line for line in _read_text(root, path).splitlines() if line.strip()]
    if not lines:
        raise VaelabError(f"npmi_reference {path}: no documents (write one document per line)")
    return lines


def _read_text(file: Path, given: str | Path) -> str:
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise VaelabError(f"npmi_reference {given}: cannot read {file} ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VaelabError(f"npmi_reference {given}: {file} is not UTF-8 text (bad byte 0x{raw[e.start]:02x})") from None
