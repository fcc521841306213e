"""Text in: readers (formats, encodings), tokenisers, vocabularies, hashed word n-grams."""

from __future__ import annotations

from ffnlp.text.ngrams import ngram_hashes, ngram_hashes_flat, token_hash
from ffnlp.text.readers import LabeledData, detect_format, read_corpus, read_labeled, read_lines
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab, Vocab

__all__ = [
    "LabelVocab",
    "LabeledData",
    "Tokenizer",
    "Vocab",
    "detect_format",
    "ngram_hashes",
    "ngram_hashes_flat",
    "read_corpus",
    "read_labeled",
    "read_lines",
    "token_hash",
]
