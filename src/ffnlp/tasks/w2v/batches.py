"""The training pairs: each epoch streams the encoded corpus chunk by chunk into batches.

Subsampling, dynamic windows and pair generation are vectorised over a whole chunk; then the
pairs whose centre is one of ``batch_size`` consecutive corpus words make one batch, with their
noise words. A batch is a dict of tensors whose keys are the model's (see ``SkipGram.loss``):

- skip-gram: ``center`` (B,), ``context`` (B,), ``negatives`` (B, N) and ``targets`` (B, 1+N)
  (context and noise words side by side, for the fused SGD step), plus that step's index layout
  when ``step_layout`` is on (for fastText's model, with ``subwords``, its centre words' bags of
  rows too);
- skip-gram with shared noise words: ``context`` (P,), ``center`` (C,) each centre word once,
  ``pair_center`` (P,) the centre of each pair, ``noise_weight`` (C,), ``negatives`` (C, M);
- CBOW: ``center`` (B,), ``context`` (all window words), ``offsets`` (B,), ``negatives`` (B, N);
- skip-gram for the compiled Hogwild step (``hogwild``): ``words`` (B,) the batch's corpus words
  (before sub-sampling: the Trainer counts them as the batch's examples) and ``hogwild``, a
  :class:`HogwildSlice`: the chunk's kept words and which of them are the batch's centres. Pairs
  and noise words are drawn by the kernel (:mod:`ffnlp.models.kernels.sgns_hogwild`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ffnlp.features.subwords import SubwordTable
from ffnlp.models.kernels.sgns_cpu import fused_step_layout, subword_step_layout
from ffnlp.models.kernels.sgns_hogwild import HogwildSlice
from ffnlp.models.skipgram import NoiseSampler, keep_probabilities, window_pairs
from ffnlp.tasks.w2v.config import Word2VecModelConfig
from ffnlp.tasks.w2v.corpus import EncodedCorpus
from ffnlp.tasks.w2v.prefetch import prefetched

Batch = dict[str, Any]


class PairBatches:
    """The Trainer's BatchSource for word2vec: an epoch streams the corpus chunk by chunk.

    ``batch_size`` counts corpus words (before subsampling), as word2vec's learning-rate decay
    does, so the number of batches is known before the epoch; a batch holds every pair whose
    centre is one of those words (about 2 * 0.6 * window pairs per kept word for skip-gram).
    """

    def __init__(
        self,
        corpus: EncodedCorpus,
        cfg: Word2VecModelConfig,
        prefetch: bool = True,
        step_layout: bool = False,
        subwords: SubwordTable | None = None,
        hogwild: bool = False,
    ):
        self.corpus = corpus
        # batches of corpus positions for the compiled Hogwild step, which draws the pairs itself
        self.hogwild = hogwild and cfg.architecture == "skipgram" and not cfg.shared_negatives
        self.step_layout = step_layout  # add fused_step_layout's fields to skip-gram batches
        self.subwords = subwords  # fastText's model: the step layout includes the centres' bags
        self.window, self.negative = cfg.window, cfg.negative
        self.cbow = cfg.architecture == "cbow"
        self.shared_negatives = cfg.shared_negatives
        self.keep = keep_probabilities(corpus.vocab.counts, cfg.sample)  # (V,)
        self.noise = NoiseSampler(corpus.vocab.counts, cfg.noise_power)
        self.prefetch = prefetch
        self.epoch = 0

    def __len__(self) -> int:
        return self.corpus.words

    def num_batches(self, batch_size: int) -> int:
        return sum(-(-n // batch_size) for n in self.corpus.chunk_words)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[Batch]:
        if generator is None:  # a fixed draw (evaluation order is fixed anyway)
            generator = torch.Generator().manual_seed(0)
        produce = self._produce(batch_size, generator)
        # the Hogwild batches cost one sub-sampling pass per chunk: no thread of their own
        return prefetched(produce) if self.prefetch and not self.hogwild else produce

    def _produce(self, batch_size: int, g: torch.Generator) -> Iterator[Batch]:
        for i in range(len(self.corpus)):
            yield from self._chunk_batches(self.corpus.chunk(i), batch_size, g)

    def _chunk_batches(
        self, chunk: np.ndarray, batch_size: int, g: torch.Generator
    ) -> Iterator[Batch]:
        ids = torch.from_numpy(chunk.astype(np.int64))  # (T,) words and -1 sentence ends
        is_word = ids >= 0
        sentence = torch.cumsum(~is_word, 0)[is_word]  # (n,) sentence number of each word
        words = ids[is_word]  # (n,)
        n = len(words)
        kept = (torch.rand(n, generator=g) < self.keep[words]).nonzero().squeeze(1)  # (K,)
        kept_words = words[kept]  # (K,)
        if self.hogwild:
            yield from self._hogwild_batches(words, sentence[kept], kept, kept_words, batch_size, g)
            return
        # (P,), (P,): the positions in `kept` of each pair's centre and context word
        center, context = window_pairs(sentence[kept], self.window, g)
        n_batches = -(-n // batch_size)
        # batch b: centres among words [b * batch_size, (b + 1) * batch_size) of the chunk
        kept_bounds = torch.searchsorted(kept, torch.arange(n_batches + 1) * batch_size)
        pair_bounds = torch.searchsorted(center, kept_bounds).tolist()
        for b in range(n_batches):
            lo, hi = pair_bounds[b], pair_bounds[b + 1]
            if self.cbow:
                yield self._cbow_batch(kept_words, center[lo:hi], context[lo:hi], g)
            elif self.shared_negatives:
                yield self._shared_noise_batch(kept_words, center[lo:hi], context[lo:hi], g)
            else:
                yield self._pair_batch(kept_words, center[lo:hi], context[lo:hi], g)

    def _hogwild_batches(
        self,
        words: torch.Tensor,
        kept_sentence: torch.Tensor,
        kept: torch.Tensor,
        kept_words: torch.Tensor,
        batch_size: int,
        g: torch.Generator,
    ) -> Iterator[Batch]:
        """The chunk's batches for the compiled step: batch b's centres are the kept words among
        corpus words ``[b * batch_size, (b + 1) * batch_size)`` of the chunk, as for the others."""
        n = len(words)
        n_batches = -(-n // batch_size)
        bounds = torch.searchsorted(kept, torch.arange(n_batches + 1) * batch_size).tolist()
        seed = int(torch.randint(0, 2**63 - 1, (1,), generator=g))
        arrays = (kept_words.numpy(), kept_sentence.numpy())
        accept, alias = self.noise.accept.numpy(), self.noise.alias.numpy()
        for b in range(n_batches):
            part = HogwildSlice(
                *arrays, bounds[b], bounds[b + 1], seed, self.window, self.negative, accept, alias
            )
            yield {"words": words[b * batch_size : (b + 1) * batch_size], "hogwild": part}

    def _pair_batch(
        self,
        kept_words: torch.Tensor,
        center: torch.Tensor,
        context: torch.Tensor,
        g: torch.Generator,
    ) -> Batch:
        """Skip-gram as word2vec trains it: ``negative`` noise words for every pair."""
        pairs = len(center)
        targets = torch.empty(pairs, 1 + self.negative, dtype=torch.int64)  # (B, 1+N)
        torch.index_select(kept_words, 0, context, out=targets[:, 0])
        targets[:, 1:] = self.noise.sample((pairs, self.negative), g)
        batch = {
            "center": kept_words[center],  # (B,)
            "context": targets[:, 0],  # (B,)
            "negatives": targets[:, 1:],  # (B, N)
            "targets": targets,  # (B, 1+N) both, as the model's fused step wants them
        }
        if self.step_layout:  # the fused SGD step's index bookkeeping, done here, ahead
            batch.update(fused_step_layout(batch))
            if self.subwords is not None:
                table = self.subwords
                batch.update(subword_step_layout(batch["centre_words"], table.rows, table.offsets))
        return batch

    def _shared_noise_batch(
        self,
        kept_words: torch.Tensor,
        center: torch.Tensor,
        context: torch.Tensor,
        g: torch.Generator,
    ) -> Batch:
        """Skip-gram with ``shared_negatives`` noise words per centre word, shared by its pairs."""
        centers, sizes = torch.unique_consecutive(center, return_counts=True)  # (C,), (C,)
        return {
            "context": kept_words[context],  # (P,) first: the trainer counts pairs
            "center": kept_words[centers],  # (C,) each centre once
            "pair_center": torch.repeat_interleave(torch.arange(len(centers)), sizes),  # (P,)
            # (C,) weight of each shared noise word: pairs x negative / M
            "noise_weight": sizes.float() * (self.negative / self.shared_negatives),
            "negatives": self.noise.sample((len(centers), self.shared_negatives), g),  # (C, M)
        }

    def _cbow_batch(
        self,
        kept_words: torch.Tensor,
        center: torch.Tensor,
        context: torch.Tensor,
        g: torch.Generator,
    ) -> Batch:
        """CBOW: the window words of each centre word, as one bag each."""
        centers, sizes = torch.unique_consecutive(center, return_counts=True)  # (B,), (B,)
        offsets = torch.zeros(len(sizes), dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes, 0)[:-1]
        return {
            "center": kept_words[centers],  # (B,)
            "context": kept_words[context],  # (sum of window sizes,)
            "offsets": offsets,  # (B,) where each centre's window words start in context
            "negatives": self.noise.sample((len(centers), self.negative), g),  # (B, N)
        }
