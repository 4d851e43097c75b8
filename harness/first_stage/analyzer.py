"""The Lucene English analyzer (pyserini's default, Anserini ``DefaultEnglishAnalyzer`` with the Porter stemmer),
re-implemented in Python so BM25 needs no Java:

1. StandardTokenizer — Unicode UAX#29 word boundaries, approximated with regular expressions: letters and digits
   form words; ``_`` joins (ExtendNumLet); ``.``, ``'`` and ``’`` join letter–letter and digit–digit (MidNumLet);
   ``:`` and ``·`` join letter–letter (MidLetter); ``,`` and ``;`` join digit–digit (MidNum); every other character
   (hyphens, slashes, ``@``…) splits; a run of underscores alone is no token. Han and Hiragana characters are single tokens (Katakana runs stay words); tokens longer than
   255 characters are split into 255-character pieces.
2. EnglishPossessiveFilter — drops a trailing ``'s`` / ``’s``.
3. LowerCaseFilter.
4. StopFilter with Lucene's 33 English stop words.
5. PorterStemFilter — Lucene's PorterStemmer is Martin Porter's own C implementation, which departs from the 1980
   paper in two rules (``logi`` → ``log``, ``bli`` → ``ble``). NLTK's ``PorterStemmer(mode=MARTIN_EXTENSIONS)`` is
   that variant: identical to Lucene (pyserini 1.6) on 40,000 English words, where Snowball's ``porter`` differs on
   25 (e.g. analogy, assembly) and Snowball English (Porter2) on thousands.

Known approximation: UAX#29 details outside these rules (e.g. emoji sequences, Thai/Lao dictionary segmentation) are
not reproduced; ``ANALYZER_VERSION`` keys every on-disk index so a change here rebuilds them.
"""

from __future__ import annotations

import re
from functools import lru_cache

ANALYZER_VERSION = "lucene-english-porter-3"

STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
MAX_TOKEN_LENGTH = 255

_L = r"[^\W\d_]"  # a letter (any script)
_TOKEN = re.compile(
    rf"[\w]+(?:(?:(?<={_L})[.'’:·](?={_L})|(?<=\d)[.,;'’](?=\d))[\w]+)*"
)
_IDEOGRAPHIC = re.compile(r"([\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")
_POSSESSIVE = re.compile(r"['’‛]s$", re.IGNORECASE)


def _porter_class():
    """nltk's ``PorterStemmer`` without running ``nltk/__init__``, which imports scipy.stats, sklearn and most of
    nltk (≈2.5 s, more than a warm BM25 run takes). ``porter.py`` needs only ``nltk.stem.api``; both are loaded
    under placeholder parent packages that are removed again, so a later ``import nltk`` gets the real package."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("nltk") if "nltk" not in sys.modules else None
    if spec is None or not spec.submodule_search_locations:
        from nltk.stem.porter import PorterStemmer  # nltk already imported (or absent: the usual ImportError)

        return PorterStemmer
    root = list(spec.submodule_search_locations)[0]
    names = ("nltk", "nltk.stem", "nltk.stem.api", "nltk.stem.porter")
    try:
        for name, path in (("nltk", root), ("nltk.stem", f"{root}/stem")):
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
        for name in names[2:]:
            module_spec = importlib.util.spec_from_file_location(name, f"{root}/stem/{name.rsplit('.', 1)[1]}.py")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        return sys.modules["nltk.stem.porter"].PorterStemmer
    finally:
        for name in names:
            sys.modules.pop(name, None)


@lru_cache(maxsize=1)
def _stemmer():
    porter = _porter_class()
    return porter(mode=porter.MARTIN_EXTENSIONS)


def tokenize(text: str) -> list[str]:
    """StandardTokenizer approximation (case preserved)."""
    if not text.isascii():
        text = _IDEOGRAPHIC.sub(r" \1 ", text)
    tokens = []
    for token in _TOKEN.findall(text):
        if len(token) > MAX_TOKEN_LENGTH:
            tokens.extend(token[i:i + MAX_TOKEN_LENGTH] for i in range(0, len(token), MAX_TOKEN_LENGTH))
        else:
            tokens.append(token)
    return tokens


class Analyzer:
    """Callable text → analysed terms. The filter chain's result is memoised per raw token (corpora repeat words)."""

    version = ANALYZER_VERSION

    def __init__(self):
        self._terms: dict[str, str] = {}  # raw token → term ("" when the stop filter drops it)
        self._stemmer = _stemmer()

    def _term(self, token: str) -> str:
        if not token.strip("_"):
            return ""  # only ExtendNumLet: UAX#29 makes it a word, but StandardTokenizer emits no letterless token
        token = _POSSESSIVE.sub("", token).lower()
        if not token or token in STOP_WORDS:
            return ""
        return self._stemmer.stem(token, to_lowercase=False)

    def term(self, token: str) -> str:
        """The analysed term of one raw token ("" when the stop filter drops it), memoised."""
        term = self._terms.get(token)
        if term is None:
            term = self._terms[token] = self._term(token)
        return term

    def __call__(self, text: str) -> list[str]:
        terms = self._terms
        out = []
        for token in tokenize(text):
            term = terms.get(token)
            if term is None:
                term = terms[token] = self._term(token)
            if term:
                out.append(term)
        return out

    def raw_tokens(self, text: str) -> list[str]:
        """Tokens before the filters, lower-cased up front for ASCII text (same terms: the possessive filter is
        case-insensitive and lower-casing comes next in the chain), which makes the memo hit more often."""
        return tokenize(text.lower() if text.isascii() else text)


def analyze(text: str) -> list[str]:
    return default_analyzer()(text)


@lru_cache(maxsize=1)
def default_analyzer() -> Analyzer:
    """The process-wide analyzer (its memo grows with the vocabulary seen; fine for one corpus at a time)."""
    return Analyzer()
