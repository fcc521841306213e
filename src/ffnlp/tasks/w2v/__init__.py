"""Word2vec end to end: corpus -> vocabulary -> streamed pairs -> SkipGram -> Trainer -> run dir.

The corpus is read once (:mod:`.corpus`): one pass counts the words and turns every line into
integer ids, kept in chunks of about ``corpus.chunk_tokens`` tokens, in memory or in a temporary
file for corpora larger than ``corpus.max_memory_tokens``. Each epoch then streams the chunks
(:mod:`.batches`): subsampling, dynamic windows and pair generation are vectorised over a whole
chunk, and the pairs of ``batch_size`` corpus words at a time become one batch (with their noise
words) for the shared Trainer, prepared a few ahead in a background thread (:mod:`.prefetch`).
:mod:`.train` is the recipe, :mod:`.result` the trained vectors and their run directory,
:mod:`.evaluate` the similarity and analogy measures, :mod:`.config` the settings.
"""

from ffnlp.tasks.w2v.batches import PairBatches
from ffnlp.tasks.w2v.config import (
    CorpusConfig,
    EvaluationConfig,
    W2VConfig,
    Word2VecModelConfig,
    resolve_config,
)
from ffnlp.tasks.w2v.corpus import EncodedCorpus
from ffnlp.tasks.w2v.evaluate import evaluate_vectors, nearest_words
from ffnlp.tasks.w2v.result import Word2VecRun, load, load_word_vectors
from ffnlp.tasks.w2v.train import train_word2vec

__all__ = [
    "SPEC",
    "CorpusConfig",
    "EncodedCorpus",
    "EvaluationConfig",
    "PairBatches",
    "W2VConfig",
    "Word2VecModelConfig",
    "Word2VecRun",
    "evaluate_vectors",
    "load",
    "load_word_vectors",
    "nearest_words",
    "resolve_config",
    "train_word2vec",
]
from ffnlp.tasks.w2v.spec import SPEC  # registers the task (last: it names the above)
