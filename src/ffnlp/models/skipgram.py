"""Skip-gram (and CBOW) word2vec with negative sampling (Mikolov et al. 2013).

The model is two embedding tables: ``input`` holds the word vectors (word2vec's ``syn0``, what gets
exported) and ``output`` the context vectors (``syn1neg``). A training example is a (centre word,
context word) pair plus ``N`` noise words; the loss is

    -log sigmoid(u_o . v_c) - sum_k log sigmoid(-u_k . v_c)

with v the input vector of the centre word and u the output vectors of the context and noise words.
CBOW swaps the roles: the mean of the window's input vectors predicts the centre word.

The sampling pieces word2vec needs live here too, as vectorised functions over whole chunks of a
tokenised corpus (no Python per token): frequent-word subsampling (:func:`keep_probabilities`), the
noise distribution ``count ** 0.75`` (:class:`NoiseSampler`), and dynamic windows
(:func:`window_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ffnlp.errors import DataError, TrainingError
from ffnlp.models.kernels import sgns_cpu, sgns_hogwild
from ffnlp.models.registry import register

# --------------------------------------------------------------------------------------- sampling


def keep_probabilities(counts: Sequence[int] | np.ndarray, sample: float) -> torch.Tensor:
    """Probability of keeping each occurrence of a word when subsampling frequent words.

    The formula of the word2vec C tool, which gensim also uses: with ``f`` the word's share of
    the corpus tokens and ``t = sample``, ``keep = (sqrt(f / t) + 1) * t / f``, capped at 1. (The
    paper's ``1 - sqrt(t / f)`` discards more.) ``sample = 0`` keeps everything.
    """
    c = torch.as_tensor(np.asarray(counts, dtype=np.float64))
    if sample <= 0:
        return torch.ones(len(c), dtype=torch.float32)
    f = c / c.sum()
    with np.errstate(divide="ignore"):
        keep = (torch.sqrt(f / sample) + 1.0) * sample / f  # inf for a zero count -> clamped
    return keep.clamp(max=1.0).nan_to_num(1.0).float()


class NoiseSampler:
    """Draws noise words with probability proportional to ``count ** power`` (word2vec: 0.75).

    Uses the alias method (Walker 1977; Vose's construction), so a draw is two table look-ups
    whatever the vocabulary size, and the distribution is exact (word2vec's 1e8-entry table and
    gensim's cumulative table are approximations of the same thing).
    """

    def __init__(self, counts: Sequence[int] | np.ndarray, power: float = 0.75):
        weights = np.asarray(counts, dtype=np.float64) ** power
        if weights.sum() <= 0:
            raise DataError("the noise distribution needs at least one word with a positive count")
        self.probs = torch.from_numpy(weights / weights.sum())  # (V,) the target distribution
        self.accept, self.alias = _alias_table(self.probs.numpy())

    def sample(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Word ids of the given shape (int64)."""
        n = int(np.prod(shape))
        slot = torch.randint(len(self.accept), (n,), generator=generator)  # (n,)
        coin = torch.rand(n, generator=generator)  # (n,)
        take_alias = coin >= self.accept[slot]
        return torch.where(take_alias, self.alias[slot], slot).view(shape)


def _alias_table(p: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Vose's alias method: slot i keeps itself with probability accept[i], else alias[i]."""
    v = len(p)
    scaled = p * v
    accept = np.ones(v, dtype=np.float64)
    alias = np.arange(v, dtype=np.int64)
    small = [i for i in range(v) if scaled[i] < 1.0]
    large = [i for i in range(v) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # leftovers are 1 up to rounding error
    return torch.from_numpy(accept.astype(np.float32)), torch.from_numpy(alias)


def window_pairs(
    sentence: torch.Tensor, window: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, context) positions of every skip-gram pair of a chunk, with dynamic windows.

    ``sentence[i]`` is the sentence number of token i (tokens in corpus order, already
    subsampled). As in word2vec, each centre draws its window ``b`` uniformly from 1..window and
    pairs with the tokens at distance <= b in the same sentence, so near words count more.
    Returns two int64 tensors (P,), sorted by centre position (then by offset -window..window).
    """
    k = len(sentence)
    reach = torch.randint(1, window + 1, (k,), generator=generator)  # (K,) each centre's window
    offsets = [d for d in range(-window, window + 1) if d != 0]
    valid = torch.zeros(k, len(offsets), dtype=torch.bool)  # (K, 2W)
    for col, d in enumerate(offsets):
        a = abs(d)
        if a >= k:
            continue
        if d > 0:  # context at i + d, for centres 0..K-d-1
            valid[: k - d, col] = (sentence[d:] == sentence[:-d]) & (reach[: k - d] >= a)
        else:  # context at i - a, for centres a..K-1
            valid[a:, col] = (sentence[a:] == sentence[:-a]) & (reach[a:] >= a)
    centre, which = valid.nonzero(as_tuple=True)  # row-major: sorted by centre
    context = centre + torch.tensor(offsets)[which]
    return centre, context


# ------------------------------------------------------------------------------------------ model


@register("skipgram")
class SkipGram(nn.Module):
    """Word2vec with negative sampling: skip-gram (default) or CBOW (``cbow=True``).

    ``loss(batch)`` reads ``batch["center"]`` (B,), ``batch["context"]`` (B,) and
    ``batch["negatives"]`` (B, N) for skip-gram; for CBOW ``batch["context"]`` holds the flattened
    window words of each centre with ``batch["offsets"]`` (B,) where each window starts.

    ``fused=True`` (the default) runs skip-gram on the CPU kernels of
    :mod:`ffnlp.models.kernels.sgns_cpu`: pair scores with a hand-written backward, and
    :meth:`sgd_step`, a plain-SGD step without autograd. ``fused=False`` keeps to the plain
    PyTorch reference (embedding look-ups and a dot product; no ``sgd_step``): the same numbers up
    to rounding, slower.
    """

    # the loss's gradient is the sum over pairs (per-pair SGD): under torchrun the ranks' gradients
    # are summed, so that N ranks make the update of one process with the same global batch
    distributed_reduction = "sum"

    def __init__(
        self,
        vocab_size: int,
        dim: int = 100,
        cbow: bool = False,
        sparse: bool = True,
        workers: int = 1,
        fused: bool = True,
    ):
        super().__init__()
        self.workers = workers  # threads that share each batch (skip-gram, fused kernels)
        self.fused = fused  # the CPU kernels (True) or the plain PyTorch reference (False)
        self.vocab_size, self.dim, self.cbow = vocab_size, dim, cbow
        self.sparse = sparse
        self.input = nn.Embedding(vocab_size, dim, sparse=sparse)  # word vectors (syn0)
        self.output = nn.Embedding(vocab_size, dim, sparse=sparse)  # context vectors (syn1neg)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # word2vec's initialisation: input uniform in +-0.5/D, output zero
        with torch.no_grad():
            self.input.weight.uniform_(-0.5 / self.dim, 0.5 / self.dim)
            self.output.weight.zero_()

    def forward(
        self, source: torch.Tensor, targets: torch.Tensor, offsets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores (B, T) of each example's T target words (column 0 the true one, then noise)."""
        if self.cbow:  # the mean of each window's input vectors
            hidden = F.embedding_bag(
                source, self.input.weight, offsets, mode="mean", sparse=self.sparse
            )  # (B, D)
            out = self.output(targets)  # (B, T, D)
            return torch.linalg.vecdot(out, hidden.unsqueeze(1))  # (B, T)
        return self._pair_scores(source, targets)

    def _pair_scores(self, source: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Skip-gram scores (B, T): ``input[source[b]] . output[targets[b, t]]``."""
        w_in, w_out = self.input.weight, self.output.weight
        if self.fused:
            return sgns_cpu.PairScores.apply(
                w_in, w_out, source, targets, self.sparse, self.workers
            )
        hidden = F.embedding(source, w_in, sparse=self.sparse)  # (B, D)
        out = F.embedding(targets, w_out, sparse=self.sparse)  # (B, T, D)
        return torch.linalg.vecdot(out, hidden.unsqueeze(1))  # (B, T)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative-sampling loss. Its value is the mean over the batch's pairs; its gradient is
        that of the sum, as in word2vec's per-pair SGD, so ``train.lr`` means what gensim's
        ``alpha`` means (0.025) whatever the batch size."""
        if "pair_center" in batch:  # noise words shared by the pairs of one centre
            return self._shared_negatives_loss(batch)
        if self.cbow:
            targets = torch.cat([batch["center"].unsqueeze(1), batch["negatives"]], 1)  # (B, 1+N)
            scores = self(batch["context"], targets, batch["offsets"])  # (B, 1+N)
        else:
            targets = torch.cat([batch["context"].unsqueeze(1), batch["negatives"]], 1)  # (B, 1+N)
            scores = self(batch["center"], targets)  # (B, 1+N)
        return sgns_loss(scores)

    def _shared_negatives_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Skip-gram whose M noise words are drawn once per centre word and shared by the k
        pairs of its window (each weighted k * N / M): the same expected gradient as N noise
        words per pair, with M instead of k * N output rows to gather and update."""
        centre = batch["center"]  # (C,)
        pair_centre = centre.index_select(0, batch["pair_center"])  # (P,)
        pos = self._pair_scores(pair_centre, batch["context"].unsqueeze(1))  # (P, 1)
        neg = self._pair_scores(centre, batch["negatives"])  # (C, M)
        # -log sigmoid(x) = softplus(-x); -log sigmoid(-x) = softplus(x)
        total = (
            F.softplus(-pos).sum() + (batch["noise_weight"].unsqueeze(1) * F.softplus(neg)).sum()
        )
        mean = total / max(pos.shape[0], 1)
        return total - (total - mean).detach()  # value: the mean per pair; gradient: the sum's

    def sgd_step(self, batch: dict[str, Any], lr: float) -> torch.Tensor | float | None:
        """One plain-SGD step on a skip-gram batch without autograd (the kernel
        :func:`ffnlp.models.kernels.sgns_cpu.sgd_step`); returns the mean loss.

        The same update as ``loss(batch).backward()`` followed by ``SGD(lr).step()``. Returns None
        for a batch it does not handle (CBOW, shared noise words, a model on a GPU) and when the
        model is built with ``fused=False``; the caller then takes the autograd path.

        A batch of corpus positions (``hogwild``, see :class:`ffnlp.tasks.w2v.batches.PairBatches`)
        goes to the compiled Hogwild kernel instead
        (:func:`ffnlp.models.kernels.sgns_hogwild.hogwild_step`): pair by pair, as word2vec.
        """
        if "hogwild" in batch:
            return self._hogwild(batch, lr)
        if not self.fused or self.cbow or "pair_center" in batch:
            return None
        return sgns_cpu.sgd_step(
            self.input.weight, self.output.weight, batch, lr, workers=self.workers
        )

    def _hogwild(
        self,
        batch: dict[str, Any],
        lr: float,
        subwords: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> float:
        """The compiled step on a batch of corpus positions; an error where it cannot run (such
        batches are made only where it can: see ``ffnlp.tasks.w2v.train.hogwild_possible``)."""
        loss = None
        if self.fused and not self.cbow:
            loss = sgns_hogwild.hogwild_step(
                self.input.weight, self.output.weight, batch["hogwild"], lr, self.workers, subwords
            )
        if loss is None:
            raise TrainingError(
                "a batch made for the compiled word2vec step reached a model that cannot take it "
                "(fused=False, CBOW, a model off the CPU, or compiled kernels off); rerun with "
                "FFNLP_JIT=0 to train on the PyTorch path"
            )
        return loss

    @torch.no_grad()
    def word_vectors(self) -> torch.Tensor:
        """The input vectors (V, D): what word2vec exports."""
        return self.input.weight.detach().clone()


def sgns_loss(scores: torch.Tensor) -> torch.Tensor:
    """Mean-valued, sum-gradient negative-sampling loss of scores (B, 1+N), column 0 positive."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    total = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum")
    mean = total / max(scores.shape[0], 1)
    return total - (total - mean).detach()  # value: the mean; gradient: the sum's
