"""Tokenisers: text in, list of string tokens out.

Two kinds, both deterministic and without dependencies:

- ``whitespace``: split on ASCII whitespace (space, tab, CR, LF, FF, VT) — exactly what fastText
  does, and right for pre-tokenised data such as SST-2, MR and PTB. Other Unicode spaces (U+00A0,
  U+0085, which the Latin-1 MR data holds inside words) stay inside tokens.
- ``regex``: Unicode-aware words. A token is a number with separators (``3.14``, ``1,000``), a word
  of letters/digits/underscores with internal apostrophes or hyphens (``don't``, ``state-of-the-art``,
  ``1930s``), or one punctuation or symbol character on its own (``!``, ``"``, ``€``). Unicode
  whitespace separates tokens and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ffnlp.errors import ConfigError

KINDS = ("whitespace", "regex")
_ASCII_WHITESPACE = re.compile(r"[^ \t\n\r\f\v]+")
_WORDS = re.compile(
    r"\d+(?:[.,]\d+)+"  # numbers with decimal or thousands separators
    r"|\w+(?:['\u2019\-]\w+)*"  # words, with internal apostrophes (' or ’) and hyphens
    r"|[^\w\s]"  # any other visible character, one at a time
)


@dataclass(frozen=True)
class Tokenizer:
    """``Tokenizer(kind, lowercase)(text) -> list[str]``; see the module docstring for the kinds."""

    kind: str = "whitespace"  # "whitespace" keeps pre-tokenised corpora exactly as they are
    lowercase: bool = False  # SST-2 / MR / PTB are already lowercased; raw text may want it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"The 'kind' parameter of Tokenizer must be one of {', '.join(KINDS)}; "
                f"got {self.kind!r} instead."
            )

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.kind == "regex":
            return _WORDS.findall(text)
        if text.isascii():
            return text.split()  # the fast path: ASCII str.split() splits on ASCII whitespace
        return _ASCII_WHITESPACE.findall(text)

    def tokenize_all(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenise every text; one list of tokens per text, in order."""
        return [self(text) for text in texts]
