"""Split a document into sentences for next-sentence prediction: a small regex splitter, no model.

Rules, in order:
- line breaks end a sentence; HTML line breaks (`<br />`, as in the IMDB reviews) count as line breaks;
- `.`, `!` or `?` (any run of them, then optional closing quotes/brackets) followed by whitespace and a
  capital letter or an opening quote ends a sentence;
- except after common abbreviations (Mr. Dr. St. vs. etc. Jan. ...) and single letters (initials such
  as "J. R. R. Tolkien", and "e.g." / "i.e." / "U.S."), where a period rarely ends a sentence.
Lower-cased text (SST-2) has no capitals to split at, so each line stays one sentence: for NSP that
is the safe failure (a missed boundary makes a longer sentence, never a false pair).
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset("""
mr mrs ms mx dr prof sr jr st mt ft vs etc al approx dept est fig no nos vol vols op cf ca inc ltd co corp bros
gen col lt sgt capt cmdr adm gov sen rep rev hon pres jan feb mar apr jun jul aug sep sept oct nov dec
""".split())

_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# group 1: the closing punctuation; the lookahead: the next sentence starts with a capital or a quote
_BOUNDARY = re.compile(r"""([.!?]+["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]*[A-Z])""")
# the word before a final period: after a space, a period (U.S., e.g.) or an opening bracket/quote, not an
# apostrophe (Mary's. ends a sentence)
_LAST_WORD = re.compile(r"(?:^|[\s.(\[\"\u201c])([A-Za-z]+)\.$")


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, in order; empty pieces dropped."""
    out: list[str] = []
    for line in _HTML_BREAK.sub("\n", text).splitlines():
        start = 0
        for m in _BOUNDARY.finditer(line):
            end = m.end(1)
            if _is_abbreviation(line[start:end]):
                continue
            piece = line[start:end].strip()
            if piece:
                out.append(piece)
            start = m.end()
        piece = line[start:].strip()
        if piece:
            out.append(piece)
    return out


def _is_abbreviation(sentence: str) -> bool:
    """True when `sentence` ends in a single period right after an abbreviation or a single letter."""
    if sentence.endswith("..") or not sentence.endswith("."):
        return False
    m = _LAST_WORD.search(sentence)
    if m is None:
        return False
    word = m.group(1)
    return len(word) == 1 or word.lower() in ABBREVIATIONS
