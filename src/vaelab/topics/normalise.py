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

A document run records its reading when it trains (`recipe()`, kept as RUN/text-reading.json): lower-casing, the
token pattern, the stop words themselves, the lemmatiser and its version, the ending rules. `Normaliser(vocabulary,
recorded=...)` reads new text that way from any installation; where the installed simplemma is not the recorded
one (another version, missing, or installed for a run recorded without it) `notes` says so and what is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import VaelabError

RECIPE = 1  # the layout of a recorded reading (text-reading.json's "recipe")
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


def recipe(lemmas: bool = True) -> dict[str, Any]:
    """How new text is read here and now, as plain JSON values: what a document run records when it trains."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer  # lazy: slow import

    vec = CountVectorizer()
    found = _simplemma() if lemmas else None
    return {"recipe": RECIPE, "lower_case": bool(vec.lowercase), "token_pattern": vec.token_pattern,
            "stop_words": sorted(ENGLISH_STOP_WORDS), "lemmas": lemmas, "lemmatiser": found[1] if found else None,
            "endings": [list(e) for e in ENDINGS] if lemmas else [],
            "steps": Normaliser(["-"], lemmas=lemmas).name}


def _checked(recorded: Any, where: str) -> dict[str, Any]:
    """A recorded reading with every field of the expected type; anything else is one VaelabError."""
    types = {"lower_case": bool, "token_pattern": str, "stop_words": list, "lemmas": bool, "endings": list}
    ok = isinstance(recorded, dict) and recorded.get("recipe") == RECIPE and all(
        isinstance(recorded.get(k), t) for k, t in types.items())
    ok = ok and all(isinstance(w, str) for w in recorded["stop_words"]) and all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(p, str) for p in e) for e in recorded["endings"])
    ok = ok and (recorded.get("lemmatiser") is None or isinstance(recorded["lemmatiser"], str))
    if not ok:
        raise VaelabError(f"{where} is damaged (not a text reading of recipe {RECIPE}); train the run again")
    return recorded


class Normaliser:
    """Tokens of new text mapped onto a vocabulary (see the module's steps), read as here and now or as a run
    recorded (`recorded`, a recipe(); `where` names it in errors)."""

    def __init__(self, vocabulary: Sequence[str], lemmas: bool = True, recorded: dict[str, Any] | None = None,
                 where: str = "the recorded text reading"):
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer  # lazy: slow import

        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.notes: list[str] = []  # where the installed lemmatiser is not the recorded one
        found = _simplemma() if lemmas else None
        if recorded is None:
            lower, pattern, self.stop_words, self.endings = True, None, ENGLISH_STOP_WORDS, ENDINGS if lemmas else ()
        else:
            r = _checked(recorded, where)
            lower, pattern, lemmas = r["lower_case"], r["token_pattern"], r["lemmas"]
            self.stop_words = frozenset(r["stop_words"])
            self.endings = tuple((end, new) for end, new in r["endings"])
            found = self._recorded_lemmatiser(r.get("lemmatiser"), _simplemma() if lemmas else None)
        vec = CountVectorizer(lowercase=lower) if pattern is None else CountVectorizer(lowercase=lower,
                                                                                      token_pattern=pattern)
        try:
            self.tokenize = vec.build_analyzer()
        except (re.error, ValueError) as e:  # a recorded token pattern that does not compile
            raise VaelabError(f"{where} is damaged (token pattern: {e}); train the run again") from None
        self.lemma = found[0] if found else None
        steps = ["lower case"] if lower else []
        steps += ["CountVectorizer tokens", "scikit-learn English stop words dropped" if recorded is None
                  else f"the run's {len(self.stop_words)} stop words dropped"]
        if lemmas:
            steps.append(f"{found[1]} English lemmas" if found else "no lemmatiser" if recorded is not None
                         else "no lemmatiser (pip install 'vaelab[text]')")
            if self.endings:
                steps.append("-s/-es/-ed/-ing endings")
        self.name = ", ".join(steps)
        self.lemmas = lemmas
        self.cache: dict[str, int | None] = {}

    def _recorded_lemmatiser(self, want: str | None, have: tuple[Callable[[str], str], str] | None
                             ) -> tuple[Callable[[str], str], str] | None:
        """The lemmatiser to read with: the installed simplemma where the run recorded one (noting another
        version), none where the run recorded none or it is missing (noted)."""
        if want is None:
            if have is not None:
                self.notes.append(f"the run recorded no lemmatiser; {have[1]} is installed but not used, "
                                  "so new text is read as the run recorded")
            return None
        if have is None:
            self.notes.append(f"the run recorded {want}, which is not installed: words outside the vocabulary "
                              "are found by their endings only (pip install 'vaelab[text]')")
        elif have[1] != want:
            self.notes.append(f"the run recorded {want}; {have[1]} is installed and used, so a few lemmas may "
                              "differ from the run's")
        return have

    def find(self, token: str) -> int | None:
        """The vocabulary index of token or of its first normal form in the vocabulary; None when none is."""
        if token in self.index:
            return self.index[token]
        if not self.lemmas:
            return None
        if token not in self.cache:
            forms = [self.lemma(token)] if self.lemma is not None else []
            forms += [token[:-len(end)] + new for end, new in self.endings
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
