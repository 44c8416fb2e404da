"""New text normalised the way a corpus's vocabulary was built, so its words are found in the vocabulary.

Preprocessed corpora (OCTIS's BBC News) hold lower-case lemmas with the stop words removed: "banks", "rates" and
"announced" appear as bank, rate, announce, and "the", "of" not at all. A new text is read the same way:
    1. tokens: lower case, words of 2+ letters (scikit-learn's CountVectorizer analyzer, as before);
    2. a token in the vocabulary is counted as it is;
    3. else a stop word (scikit-learn's English list) is dropped as the vocabulary's builder dropped it;
    4. else its lemma is looked up: simplemma's English lemma (the optional extra `vaelab[text]`), then the
       token with a plural or past-tense ending taken off (-s, -es, -ed, -d, -ing, -ing + e); the first of these
       in the vocabulary is counted; none: the token is unseen.
Each document reports its tokens kept, its stop words and its unseen tokens; `Normaliser.name` says which
steps ran (with simplemma's version), so the numbers can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

ENDINGS = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("d", ""), ("ing", ""), ("ing", "e"))


def _simplemma() -> tuple[Callable[[str], str], str] | None:
    """simplemma's English lemmatiser and its version, or None when it is not installed."""
    try:
        import simplemma
    except ImportError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("simplemma")
    except PackageNotFoundError:
        v = "?"
    return (lambda w: simplemma.lemmatize(w, lang="en").lower()), f"simplemma {v}"


@dataclass
class Counted:
    """One document's tokens: those kept (in the vocabulary, as indices), stop words dropped, unseen tokens."""

    kept: list[int]
    stop: int
    unseen: int


class Normaliser:
    """Tokens of new text mapped onto a vocabulary (see the module's steps)."""

    def __init__(self, vocabulary: Sequence[str], lemmas: bool = True):
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer  # lazy: slow import

        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.stop_words = ENGLISH_STOP_WORDS
        self.tokenize = CountVectorizer().build_analyzer()
        found = _simplemma() if lemmas else None
        self.lemma = found[0] if found else None
        steps = ["lower case", "CountVectorizer tokens", "scikit-learn English stop words dropped"]
        if lemmas:
            steps.append(f"{found[1]} English lemmas" if found else "no lemmatiser (pip install 'vaelab[text]')")
            steps.append("-s/-es/-ed/-ing endings")
        self.name = ", ".join(steps)
        self.lemmas = lemmas
        self.cache: dict[str, int | None] = {}

    def find(self, token: str) -> int | None:
        """The vocabulary index of token or of its first normal form in the vocabulary; None when none is."""
        if token in self.index:
            return self.index[token]
        if not self.lemmas:
            return None
        if token not in self.cache:
            forms = [self.lemma(token)] if self.lemma is not None else []
            forms += [token[:-len(end)] + new for end, new in ENDINGS
                      if token.endswith(end) and len(token) > len(end) + 2]
            self.cache[token] = next((self.index[f] for f in forms if f in self.index), None)
        return self.cache[token]

    def __call__(self, text: str) -> Counted:
        kept, stop, unseen = [], 0, 0
        for token in self.tokenize(text):
            j = self.find(token)
            if j is not None:
                kept.append(j)
            elif token in self.stop_words:
                stop += 1
            else:
                unseen += 1
        return Counted(kept, stop, unseen)
