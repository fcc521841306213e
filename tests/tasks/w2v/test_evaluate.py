"""evaluate_vectors (summary.json's evaluation section) and the Trainer's per-epoch evaluator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch import nn

from ffnlp.errors import ModelFileError
from ffnlp.features.wordvec_eval import WordVectors, evaluate_similarity
from ffnlp.models.skipgram import SkipGram
from ffnlp.tasks.w2v import evaluate_vectors
from ffnlp.tasks.w2v.evaluate import similarity_evaluator
from ffnlp.text.vocab import Vocab

WORDS = ["man", "king", "woman", "queen", "apple"]
# king - man + woman is queen, with both 3CosAdd and 3CosMul
VECTORS = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 1, 1], [0.3, -1, -1]], dtype=np.float32)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8\nman\twoman\t7\nking\tapple\t1\nqueen\tpear\t2\n")
    analogies = tmp_path / "questions.txt"
    analogies.write_text(": royalty\nman king woman queen\n: fruit\napple pear man woman\n")
    return pairs, analogies


def test_evaluation_section(files: tuple[Path, Path]) -> None:
    pairs, analogies = files
    wv = WordVectors(WORDS, VECTORS)
    out = evaluate_vectors(wv, [pairs], analogies)
    assert out["similarity"] == {"pairs.tsv": evaluate_similarity(wv, pairs)}
    analogy = out["analogy"]
    assert {k: analogy[k] for k in ("file", "accuracy", "3cosadd", "3cosmul", "restrict")} == {
        "file": "questions.txt",
        "accuracy": 1.0,
        "3cosadd": 1.0,
        "3cosmul": 1.0,
        "restrict": 5,  # at most the vocabulary
    }
    assert (analogy["questions"], analogy["skipped"]) == (1, 1)  # "pear" is unknown
    assert analogy["sections"]["royalty"] == {"3cosadd": 1.0, "3cosmul": 1.0, "questions": 1}
    assert analogy["sections"]["fruit"]["questions"] == 0
    assert evaluate_vectors(wv) == {}


def test_the_epoch_evaluator_scores_the_models_vectors(files: tuple[Path, Path]) -> None:
    pairs, _ = files
    vocab = Vocab(WORDS, [5, 4, 3, 2, 1], specials=())
    model = SkipGram(len(WORDS), 3)
    scores = similarity_evaluator([pairs], vocab)(model, None)
    wv = WordVectors(WORDS, model.word_vectors().numpy())
    assert scores == {"spearman_pairs": evaluate_similarity(wv, pairs)["spearman"]}
    with pytest.raises(
        ModelFileError, match="cannot be used as a Embedder model: it has no word_vectors"
    ):
        similarity_evaluator([pairs], vocab)(nn.Linear(3, 3), None)
