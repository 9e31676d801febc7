"""Token-string helpers shared by graph building, prediction, search and augmentation."""

from __future__ import annotations

import re

_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!\n]")


def norm_token(token: str, enabled: bool = True) -> str:
    """The key a token is stored and looked up under.

    With `enabled` (DeepDecipher's published data): a title-case token longer than one character
    is lower-cased, then a token longer than one character that contains a letter is stripped of
    surrounding whitespace. " He" -> "he", " the" -> "the", " HTML" -> "HTML", "\\n" -> "\\n".
    Disabled, tokens are used exactly.
    """
    if not enabled:
        return token
    if len(token) > 1 and token.istitle():
        token = token.lower()
    if len(token) > 1 and has_letter(token):
        token = token.strip()
    return token


def search_key(token: str) -> str:
    """Key of a token in the search index: trimmed and lower-cased, as DeepDecipher's UI sends."""
    return token.strip().lower()


def has_letter(token: str) -> bool:
    return _LETTER.search(token) is not None


def ends_sentence(token: str) -> bool:
    """N2G's sentence boundary: any token containing '.', '!' or a newline."""
    return _SENTENCE_END.search(token) is not None
