"""Search text normalisation, the same for documents and queries (pure functions).

Why not index the raw text: ``pg_trgm`` keeps only characters the *database's* ``LC_CTYPE``
calls alphanumeric. Under ``C.UTF-8`` or ``en_US.UTF-8`` Hangul survives; under plain ``C``
(a common ``initdb --locale=C`` choice) every Korean character is dropped and ``잔잔한`` has no
trigrams at all. ``lower()`` has the same dependency. So Python folds the text (NFKC,
``casefold``, Latin accents removed, punctuation out) and then *armours* each non-ASCII letter
as ASCII, which every locale treats as word characters:

* a Hangul syllable becomes ``Q`` + its three jamo indexes (initial, vowel, final) as base-36
  digits, e.g. ``밤`` → ``Q780``: four characters, and a typo in one jamo changes one of them,
  so trigram similarity degrades gently;
* any other non-ASCII letter or digit becomes ``X`` + its code point in four base-36 digits.

The markers are upper-case while folded text is lower-case, so an armoured query can only
match a document at a character boundary: ``LIKE '%…%'`` on armoured text is exactly a
substring search on the folded text. The ``simple`` text-search parser sees ASCII words too,
so full-text search (with prefixes) works on Korean in any locale as well.
"""

from __future__ import annotations

import re
import unicodedata

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# punctuation inside a word joins its parts: lo-fi → lofi, don't → dont, r&b → rb
_JOINERS = "-'’‘`.&_+·"
_JOINED = re.compile(rf"(?<=\w)[{re.escape(_JOINERS)}](?=\w)")  # one: "..." separates
_NON_WORD = re.compile(r"[\W_]+")
MAX_QUERY_TERMS = 8


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rest = divmod(value, 36)
        out.append(_DIGITS[rest])
    return "".join(reversed(out))


def _strip_latin_accents(char: str) -> str:
    """é → e, ñ → n; other scripts are left alone (NFKD would split Hangul into jamo)."""
    code = ord(char)
    if 0xC0 <= code <= 0x24F or 0x1E00 <= code <= 0x1EFF:
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if c.isascii())
        return base or char
    return char


def fold(text: str, *, split_joined: bool = False) -> str:
    """Lower-case words separated by single spaces: NFKC, casefold, no accents, no punctuation.

    Punctuation inside a word joins it (``lo-fi`` → ``lofi``); with ``split_joined`` the parts
    are appended after the text (``lofi chill lo fi``): documents match both spellings.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(_strip_latin_accents(c) for c in text)
    words: list[str] = []
    variants: list[str] = []  # after the text, so phrases stay contiguous for LIKE
    for chunk in text.split():
        joined = _NON_WORD.sub(" ", _JOINED.sub("", chunk)).split()
        words.extend(joined)
        if split_joined and _JOINED.search(chunk):
            parts = _NON_WORD.sub(" ", chunk).split()
            if parts != joined:
                variants.extend(parts)
    return " ".join(words + variants)


def armour_char(char: str) -> str:
    if char.isascii():
        return char
    code = ord(char)
    if HANGUL_FIRST <= code <= HANGUL_LAST:
        index = code - HANGUL_FIRST
        initial, rest = divmod(index, 21 * 28)
        vowel, final = divmod(rest, 28)
        return "Q" + _DIGITS[initial] + _DIGITS[vowel] + _DIGITS[final]
    if char.isalnum():
        return "X" + _base36(code, 4)
    return " "


def armour(folded: str) -> str:
    """ASCII-only form of folded text that pg_trgm and the ``simple`` parser keep whole."""
    return "".join(armour_char(c) for c in folded)


def document(text: str | None) -> str:
    """Indexable form of one field: folded with both spellings of joined words, armoured."""
    return armour(fold(text or "", split_joined=True))


def query_terms(q: str) -> list[str]:
    """Armoured query words (at most ``MAX_QUERY_TERMS``), in order, without repeats."""
    words = fold(q).split()
    return list(dict.fromkeys(armour(w) for w in words))[:MAX_QUERY_TERMS]


def prefix_tsquery(terms: list[str]) -> str:
    """``to_tsquery('simple', …)`` text: every term as a prefix (``a:* & b:*``), or, for
    several terms, all of them written together (``lo fi`` finds ``lofi``, ``밤 산책`` finds
    ``밤산책``: spacing in Korean titles is loose).

    Terms are ASCII letters and digits only, so no tsquery syntax can leak in.
    """
    words = [term.lower() for term in terms]
    every = " & ".join(f"{word}:*" for word in words)
    return every if len(words) < 2 else f"({every}) | {''.join(words)}:*"
