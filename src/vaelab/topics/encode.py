"""Topics of new documents: `vaelab topics RUN --docs PATH` and `vaelab.encode(run, texts)`.

A new text is normalised the way the vocabulary was built (topics/normalise.py: lower case, CountVectorizer
tokens, stop words dropped, lemmas for words outside the vocabulary) and counted over the run's vocabulary;
stop words and unseen words are ignored and counted, and the share of the other tokens kept is reported.
A run that recorded its reading (RUN/text-reading.json, written when it trained) is read that way, and any
difference of the installed lemmatiser from the recorded one is said (`Encoded.notes`, a warning from
vaelab.encode, a line from `topics --docs`); an older run is read as the installation reads now, and said so.
A topic model
(prodlda, etm) gives each document its topic proportions softmax(E_q[z]); an NVDM gives its latent
code E_q[z] (a direction per dimension, so its "top topics" are the dimensions of largest |z_k|, signed).
"""

from __future__ import annotations

import csv
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..atomic import atomic_write
from ..data.regular_files import open_regular
from ..errors import VaelabError
from ..runs import kept_data, loading
from ..runs.folder import DOC_TOPICS, TEXT_READING, RunFolder
from . import scores
from .normalise import Normaliser

TOP_TOPICS = 3  # topics listed per document
LABEL_WORDS = 4  # words naming a topic in the listing


@dataclass
class Encoded:
    """New documents' topic mixtures (or latent codes) and what was ignored."""

    values: np.ndarray  # (N, K): topic proportions, or latent codes for an NVDM
    kind: str  # "proportions" or "code"
    names: list[str]  # (K,) column names: topic_1... or z1...
    labels: list[str]  # (K,) each column's top words
    words: np.ndarray  # (N,) tokens counted (in the vocabulary)
    unseen: np.ndarray  # (N,) tokens ignored (not in the vocabulary)
    seconds: float  # time to count and encode, after loading
    stop: np.ndarray | None = None  # (N,) stop words dropped (not in the vocabulary, as when it was built)
    normaliser: str = ""  # the steps that read the text (normalise.Normaliser.name)
    notes: tuple[str, ...] = ()  # where the reading is not the one the run recorded

    def kept_fraction(self) -> float:
        """Tokens counted over tokens counted or unseen (stop words aside), all documents; 0 with no token."""
        total = int(self.words.sum() + self.unseen.sum())
        return float(self.words.sum()) / total if total else 0.0

    def top(self, i: int, n: int = TOP_TOPICS) -> list[tuple[str, float]]:
        """Document i's n largest topics (signed latent dimensions for a code), as (name, value)."""
        v = self.values[i]
        if self.kind == "proportions":
            return [(self.names[k], float(v[k])) for k in np.argsort(-v, kind="stable")[:n]]
        return [(self.names[k] + ("+" if v[k] >= 0 else "-"), float(v[k]))
                for k in np.argsort(-np.abs(v), kind="stable")[:n]]


def read_texts(path: str | Path) -> list[str]:
    """One document per non-blank line of a UTF-8 text file; an empty, binary or unreadable file is a VaelabError."""
    path = Path(path)
    try:
        with open_regular(path, f"docs {path}", VaelabError) as f:  # a FIFO would block, /dev/zero never ends
            raw = f.read()
    except OSError as e:
        raise VaelabError(f"docs {path}: cannot read ({e.strerror or e})") from None
    if b"\0" in raw:
        raise VaelabError(f"docs {path}: a binary file, not text (one document per line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VaelabError(f"docs {path}: not UTF-8 text (bad byte 0x{raw[e.start]:02x})") from None
    texts = [line for line in text.splitlines() if line.strip()]
    if not texts:
        raise VaelabError(f"docs {path}: no documents (the file is empty; write one document per line)")
    return texts


def count(texts: Sequence[str], vocabulary: Sequence[str], lemmas: bool = True,
          normalise: Normaliser | None = None) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray, str]:
    """Word counts (N, |V|) over the vocabulary, tokens counted (N,), tokens unseen (N,), stop words dropped (N,),
    and the normaliser's description (normalise.py; read as here and now unless a normaliser is given)."""
    normalise = normalise if normalise is not None else Normaliser(vocabulary, lemmas=lemmas)
    counts = torch.zeros(len(texts), len(vocabulary))
    unseen = np.zeros(len(texts), dtype=np.int64)
    stop = np.zeros(len(texts), dtype=np.int64)
    for d, text in enumerate(texts):
        c = normalise(text)
        counts[d] += torch.bincount(torch.tensor(c.kept, dtype=torch.long), minlength=len(vocabulary)).float()
        unseen[d], stop[d] = c.unseen, c.stop
    return counts, counts.sum(1).long().numpy(), unseen, stop, normalise.name


def run_normaliser(run: str | Path, vocabulary: Sequence[str]) -> Normaliser:
    """The reading a run recorded (RUN/text-reading.json) over its vocabulary; for an older run without one, the
    installation's reading, with a note saying so."""
    recorded = kept_data.reading(run)
    if recorded is None:
        n = Normaliser(vocabulary)
        n.notes.append(f"{run} recorded no text reading (trained before runs kept one); new text is read as this "
                       "installation reads it")
        return n
    return Normaliser(vocabulary, recorded=recorded, where=str(RunFolder(run).path / TEXT_READING))


def encode(run: str | Path, texts: Sequence[str], device: str = "cpu") -> Encoded:
    """The topic mixtures (or NVDM latent codes) of new texts under a trained document model, the texts read as
    the run recorded (a warning says where the installed lemmatiser differs)."""
    e = _encode(run, texts, device)
    for note in e.notes:
        warnings.warn(note, stacklevel=2)
    return e


def _encode(run: str | Path, texts: Sequence[str], device: str) -> Encoded:
    if isinstance(texts, str):
        raise VaelabError("texts must be a list of documents, not one string")
    c, model = loading.load_model(run, device=device)
    data = kept_data.run_data(run, c)  # the run's own vocabulary, without the corpus (runs/kept_data.py)
    if not hasattr(model, "topic_weights") or not hasattr(data, "vocabulary"):
        raise VaelabError(f"{run} is not a document model (nvdm, prodlda, etm) trained on a corpus")
    return encode_with(model, data.vocabulary, texts, device, run_normaliser(run, data.vocabulary))


@torch.no_grad()
def encode_with(model: torch.nn.Module, vocabulary: Sequence[str], texts: Sequence[str],
                device: str = "cpu", normalise: Normaliser | None = None) -> Encoded:
    """encode() for a loaded model and its vocabulary (timed from here), read by normalise (default: as the
    installation reads now)."""
    if isinstance(texts, str):
        raise VaelabError("texts must be a list of documents, not one string")
    start = time.perf_counter()
    normalise = normalise if normalise is not None else Normaliser(vocabulary)
    counts, words, unseen, stop, how = count(texts, vocabulary, normalise=normalise)
    model.eval()
    x = counts.to(device)
    signed = scores.signed(model)
    values = (model.embed(x) if signed else model.mixture(x)).cpu().numpy()
    top = scores.ends(model.topic_weights.detach().cpu().numpy(), LABEL_WORDS)[0]  # (K, n)
    vocab = np.asarray(vocabulary)
    k = values.shape[1]
    names = [f"z{i + 1}" for i in range(k)] if signed else [f"topic_{i + 1}" for i in range(k)]
    return Encoded(values, "code" if signed else "proportions", names, [" ".join(vocab[t]) for t in top],
                   words, unseen, time.perf_counter() - start, stop, how, tuple(normalise.notes))


def to_csv(e: Encoded) -> str:
    """One row per document: doc, words, unseen, stop (words), top (names), then one column per topic or latent
    dimension."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["doc", "words", "unseen", "stop", "top", *e.names])
    stop = e.stop if e.stop is not None else np.zeros(len(e.values), dtype=np.int64)
    for i in range(len(e.values)):
        top = " ".join(name for name, _ in e.top(i))
        w.writerow([i + 1, int(e.words[i]), int(e.unseen[i]), int(stop[i]), top, *(f"{v:.6g}" for v in e.values[i])])
    return buf.getvalue()


def run_docs(run: str | Path, docs: str | Path, out: str | Path | None = None, device: str = "cpu",
             log=print) -> Path:
    """`vaelab topics RUN --docs PATH`: print each document's mixture and top topics, write them as CSV."""
    texts = read_texts(docs)  # refuse bad input before loading anything
    folder = RunFolder(run)
    if not folder.is_run():
        raise VaelabError(f"{run} is not a vaelab run folder (no config.toml)")
    out = Path(out) if out is not None else folder.path / DOC_TOPICS
    if out.is_dir():
        raise VaelabError(f"out {out} is a folder; name a .csv file")
    e = _encode(run, texts, device)
    what = "topic proportions" if e.kind == "proportions" else "latent codes E_q[z] (an NVDM: signed dimensions)"
    log(f"{len(texts)} documents, {what}; {int(e.unseen.sum())} unseen words ignored (not in the run's "
        f"vocabulary), encoded in {e.seconds:.3f} s after loading")
    log(f"text read as: {e.normaliser}; kept {int(e.words.sum())} of {int(e.words.sum() + e.unseen.sum())} tokens "
        f"({100 * e.kept_fraction():.1f} %) besides {int(e.stop.sum())} stop words")
    for note in e.notes:
        log(f"note: {note}")
    for i, text in enumerate(texts):
        tops = ", ".join(f"{name} {100 * v:.0f}%" if e.kind == "proportions" else f"{name} {v:+.2f}"
                         for name, v in e.top(i))
        note = "  (no known word: the mixture of an empty document)" if e.words[i] == 0 else ""
        log(f"doc {i + 1:<3d} {int(e.words[i]):4d} words, {int(e.unseen[i])} unseen  {tops}{note}")
        log(f"        {text[:70]}{'...' if len(text) > 70 else ''}")
    log("topics: " + "; ".join(f"{n} = {lab}" for n, lab in zip(e.names, e.labels)))
    atomic_write(out, to_csv(e).encode())
    return out
