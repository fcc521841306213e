"""How good the vectors are: word similarity (Spearman) and analogies (3CosAdd and 3CosMul).

:func:`evaluate_vectors` gathers the measures of ``ffnlp.features.wordvec_eval`` into the
``evaluation`` section of summary.json; :func:`similarity_evaluator` is the Trainer's per-epoch
evaluation, so that a run's history shows the vectors improving.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ffnlp.features.subwords import SubwordVectors
from ffnlp.features.wordvec_eval import WordVectors, evaluate_analogies, evaluate_similarity
from ffnlp.models.protocols import as_embedder
from ffnlp.models.subword_skipgram import SubwordSkipGram
from ffnlp.text.readers import as_path
from ffnlp.text.vocab import Vocab
from ffnlp.training.trainer import Evaluate


def nearest_words(
    wv: WordVectors,
    words: Sequence[str],
    positive: Sequence[str] = (),
    negative: Sequence[str] = (),
    k: int = 10,
    method: str = "3cosadd",
) -> dict[str, Any]:
    """The answer of `ffnlp w2v neighbors` (its --json): each word's ``k`` nearest,
    ``{word: [[neighbour, score], ...]}``; with ``positive`` words the one analogy query,
    ``{"positive", "negative", "method", "neighbors": [[neighbour, score], ...]}``."""
    if positive:
        found = wv.most_similar(list(positive), k, negative=list(negative), method=method)
        query = {"positive": list(positive), "negative": list(negative), "method": method}
        return {**query, "neighbors": [[n, s] for n, s in found]}
    return {w: [[n, s] for n, s in wv.most_similar(w, k, method=method)] for w in words}


def evaluate_vectors(
    wv: WordVectors,
    similarity: Sequence[str | Path] = (),
    analogies: str | Path | None = None,
    restrict: int = 30000,
) -> dict[str, Any]:
    """``{"similarity": {file name: {...}}, "analogy": {"accuracy", "3cosmul", "sections", ...}}``."""
    out: dict[str, Any] = {}
    if isinstance(similarity, (str, os.PathLike)):  # one file given on its own
        similarity = [similarity]
    files = [as_path(p, "the word-similarity file") for p in similarity]
    if files:
        out["similarity"] = {p.name: evaluate_similarity(wv, p) for p in files}
    if analogies:
        out["analogy"] = _analogies(wv, as_path(analogies, "the analogy file"), restrict)
    return out


def _analogies(wv: WordVectors, path: str | Path, restrict: int) -> dict[str, Any]:
    """Both methods on one questions file; ``accuracy`` is 3CosAdd's, as word2vec reports it."""
    add = evaluate_analogies(wv, path, restrict=restrict, method="3cosadd")
    mul = evaluate_analogies(wv, path, restrict=restrict, method="3cosmul")
    return {
        "file": Path(path).name,
        "accuracy": add["accuracy"],
        "3cosadd": add["accuracy"],
        "3cosmul": mul["accuracy"],
        "questions": add["questions"],
        "skipped": add["skipped"],
        "restrict": add["restrict"],
        "sections": {
            name: {
                "3cosadd": s["accuracy"],
                "3cosmul": mul["sections"][name]["accuracy"],
                "questions": s["questions"],
            }
            for name, s in add["sections"].items()
        },
    }


def similarity_evaluator(files: Sequence[str | Path], vocab: Vocab) -> Evaluate:
    """Per-epoch evaluation for the Trainer: ``spearman_<file stem>`` for each similarity file
    (pairs in the vocabulary), and for a fastText model ``spearman_subwords_<file stem>`` (every
    pair whose words get a vector)."""

    def evaluate(model: nn.Module, source: Any) -> dict[str, Any]:
        wv = model_vectors(vocab.itos, model)
        out = {}
        for p in files:
            found = evaluate_similarity(wv, p)
            out[f"spearman_{Path(p).stem}"] = found["spearman"]
            if "oov_from_subwords" in found:
                out[f"spearman_subwords_{Path(p).stem}"] = found["oov_from_subwords"]["spearman"]
        return out

    return evaluate


def model_vectors(words: Sequence[str], model: nn.Module) -> WordVectors:
    """A word-vector model's vectors for its vocabulary ``words``: :class:`SubwordVectors` (with
    the n-gram rows, for words outside the vocabulary) for a fastText model."""
    vectors = as_embedder(model).word_vectors().cpu().numpy()
    if isinstance(model, SubwordSkipGram) and model.buckets:
        ngrams = model.ngram_vectors().cpu().numpy()
        return SubwordVectors(words, vectors, ngrams, model.minn, model.maxn)
    return WordVectors(words, vectors)
