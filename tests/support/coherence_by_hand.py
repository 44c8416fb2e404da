"""NPMI counted plainly from token lists, to check vaelab's (topics/coherence.py) against.

No sparse matrices, no vaelab code: a unit is a set of words, P is a share of units, and each pair's
NPMI is written out. Units are documents (window 0) or every run of `window` consecutive tokens of a
document (a document with `window` tokens or fewer is one unit).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's CountVectorizer token pattern, applied after lower()


def tokens(text: str) -> list[str]:
    """The words of a text as the corpus loader reads them (lower case, two characters or more)."""
    return TOKEN.findall(text.lower())


def units(documents: list[list[str]], window: int = 0) -> list[set[str]]:
    """The co-occurrence units: whole documents, or sliding windows of `window` tokens."""
    out = []
    for doc in documents:
        if window == 0 or len(doc) <= window:
            out.append(set(doc))
        else:
            out += [set(doc[i:i + window]) for i in range(len(doc) - window + 1)]
    return out


def pair_npmi(a: str, b: str, where: list[set[str]]) -> float:
    """NPMI(a, b) = log(P(a,b) / (P(a) P(b))) / -log P(a,b); -1 when they never meet, 1 when both are everywhere."""
    n = len(where)
    pa = sum(a in u for u in where) / n
    pb = sum(b in u for u in where) / n
    pab = sum(a in u and b in u for u in where) / n
    if pab == 0:
        return -1.0
    if pab == 1:
        return 1.0
    return math.log(pab / (pa * pb)) / -math.log(pab)


def mean_npmi(topics: list[list[str]], documents: list[list[str]], window: int = 0) -> float:
    """The mean over topics of the mean NPMI over each topic's word pairs."""
    where = units(documents, window)
    per_topic = []
    for words in topics:
        pairs = [pair_npmi(words[i], words[j], where) for i in range(len(words)) for j in range(i + 1, len(words))]
        per_topic.append(sum(pairs) / len(pairs))
    return sum(per_topic) / len(per_topic)


def split_documents(corpus_tsv: Path, split: str, vocabulary: set[str]) -> list[list[str]]:
    """The tokens of an OCTIS corpus.tsv's documents of one split, in order; documents with no word of the
    vocabulary are dropped, as the loader drops them."""
    docs = []
    for line in corpus_tsv.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip() == split:
            words = tokens(parts[0])
            if any(w in vocabulary for w in words):
                docs.append(words)
    return docs


def top_words(column, vocabulary, n: int = 10, largest: bool = True) -> list[str]:
    """The n words of largest (or smallest) weight in one column of a topic-word matrix, largest first."""
    order = sorted(range(len(column)), key=lambda i: -column[i] if largest else column[i])
    return [vocabulary[i] for i in order[:n]]
