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

import functools
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
            raise ValueError("the noise distribution needs at least one word with a positive count")
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
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 100,
        cbow: bool = False,
        sparse: bool = True,
        workers: int = 1,
    ):
        super().__init__()
        self.workers = workers  # threads that share each batch (skip-gram)
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
        return PairScores.apply(
            self.input.weight, self.output.weight, source, targets, self.sparse, self.workers
        )

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
        w_in, w_out = self.input.weight, self.output.weight
        pair_centre = centre.index_select(0, batch["pair_center"])  # (P,)
        pos = PairScores.apply(
            w_in, w_out, pair_centre, batch["context"].unsqueeze(1), self.sparse, self.workers
        )  # (P, 1)
        neg = PairScores.apply(
            w_in, w_out, centre, batch["negatives"], self.sparse, self.workers
        )  # (C, M)
        # -log sigmoid(x) = softplus(-x); -log sigmoid(-x) = softplus(x)
        total = (
            F.softplus(-pos).sum() + (batch["noise_weight"].unsqueeze(1) * F.softplus(neg)).sum()
        )
        mean = total / max(pos.shape[0], 1)
        return total - (total - mean).detach()  # value: the mean per pair; gradient: the sum's

    @torch.no_grad()
    def sgd_step(self, batch: dict[str, torch.Tensor], lr: float) -> torch.Tensor | None:
        """One plain-SGD step on a skip-gram batch, without autograd; returns the mean loss.

        The same update as ``loss(batch).backward()`` followed by ``SGD(lr).step()`` (every
        gradient from the weights as they were before the step), in three sparse products that
        never build the (pairs x targets x D) tensor of gathered output rows:

        - scores: a sampled dense-dense product (SDDMM), ``s = v_c . u_w`` only where a centre
          word meets one of its pairs' targets (context word or noise word);
        - centre steps: an embedding bag over each centre's targets weighted by the steps
          ``g = lr * (label - sigmoid(s))``, i.e. ``sum g u_w``, added to the centre's row;
        - output steps: an embedding bag over the centre vectors, one bag per distinct target
          word (``sum g v_c``), added to that word's row.

        The grouping comes from :func:`fused_step_layout` (the batch producer computes it ahead;
        otherwise it is computed here). With ``workers > 1`` threads share the centres for the
        scores and centre steps, then the tables' row updates, each thread writing rows no other
        thread writes: the result does not depend on timing. Returns None for a batch it does not
        handle (CBOW, shared noise words, a model on a GPU); the Trainer then takes the autograd
        path.
        """
        if self.cbow or "pair_center" in batch:
            return None
        w_in, w_out = self.input.weight, self.output.weight
        if w_in.device.type != "cpu":  # written for CPUs (its index layout sorts with NumPy)
            return None
        v, d = w_in.shape
        if "centre_words" not in batch:
            batch = {**batch, **fused_step_layout(batch)}
        targets = batch["targets"]  # (P, T): context, then noise words, pair by pair
        p, t = targets.shape
        if p == 0:
            return w_in.new_zeros(())
        if t > v:  # more targets per pair than words: torch's SDDMM cannot take such rows
            return None
        starts = batch["centre_starts"]  # (K+1,) first pair of each run; P at the end
        if int((starts[1:] - starts[:-1]).max()) * t > v:  # the same limit, for whole runs
            batch = {**batch, **fused_step_layout(batch, max_run=v // t)}
            starts = batch["centre_starts"]
        words = batch["centre_words"]  # (K,) each run of pairs sharing a centre word
        k = len(words)
        flat = targets.view(-1)  # (P*T,)
        hidden = w_in.index_select(0, words)  # (K, D) centre vectors
        steps = w_in.new_empty(p, t)  # (P, T) g
        centre_steps = w_in.new_empty(k, d)  # (K, D)
        losses = w_in.new_empty(p)  # (P,)
        cuts = starts.tolist()

        def centres(lo: int, hi: int) -> None:  # centres lo..hi-1, pairs a..b-1
            a, b = cuts[lo], cuts[hi]
            ends = (starts[lo : hi + 1] - a) * t  # (n+1,) row starts of the pattern
            pattern = torch.sparse_csr_tensor(
                ends, flat[a * t : b * t], w_in.new_zeros((b - a) * t), (hi - lo, v),
                check_invariants=False,
            )  # beta = 0 still multiplies the values: zeros, not garbage
            scores = torch.sparse.sampled_addmm(pattern, hidden[lo:hi], w_out.t(), beta=0.0)
            sc = scores.values().view(b - a, t)  # (pairs, T)
            # loss: -log sigmoid(s_0) - sum_k log sigmoid(-s_k) = softplus(-s_0) + sum softplus(s_k)
            sc[:, 0].neg_()
            torch.sum(F.softplus(sc), 1, out=losses[a:b])
            # the step along -dL/ds = label - sigmoid(s): sigmoid(-s_0) for the true word (its
            # score is negated above), -sigmoid(s_k) for the noise words
            g = torch.sigmoid(sc, out=steps[a:b]).mul_(-lr)  # (pairs, T)
            g[:, 0].neg_()
            centre_steps[lo:hi] = F.embedding_bag(
                flat[a * t : b * t], w_out, ends[:-1], mode="sum", per_sample_weights=g.view(-1)
            )

        _in_slices(centres, k, self.workers, min_slice=_MIN_SLICE // 4)
        order, rows, row_starts, owner = (
            batch["target_order"], batch["target_rows"], batch["target_starts"],
            batch["target_centre"],
        )
        weights = steps.view(-1).index_select(0, order)  # (P*T,) g in target order
        u = len(rows)
        row_cuts = row_starts.tolist() + [len(order)]

        def output_rows(lo: int, hi: int) -> None:  # distinct targets lo..hi-1
            a, b = row_cuts[lo], row_cuts[hi]
            update = F.embedding_bag(
                owner[a:b], hidden, row_starts[lo:hi] - a, mode="sum",
                per_sample_weights=weights[a:b],
            )  # (n, D) sum of g v_c for each target word
            w_out.index_add_(0, rows[lo:hi], update)

        # the output rows in ranges of about equal work; one more job for the centre rows
        parts = max(1, min(self.workers, u // 64))
        inner = torch.searchsorted(row_starts, torch.arange(1, parts) * (len(order) / parts))
        bounds = [0, *inner.tolist(), u]
        jobs: list[Callable[[], Any]] = [
            functools.partial(output_rows, lo, hi)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
            if hi > lo
        ]
        jobs.append(functools.partial(w_in.index_add_, 0, words, centre_steps))
        _in_parallel(jobs, self.workers)
        return losses.mean()

    @torch.no_grad()
    def word_vectors(self) -> torch.Tensor:
        """The input vectors (V, D): what word2vec exports."""
        return self.input.weight.detach().clone()


def stable_word_order(ids: torch.Tensor) -> torch.Tensor:
    """The permutation that sorts word ids (int64, >= 0), stably: NumPy's radix sort on 16-bit
    keys, in two passes (low then high half) for ids >= 2**16. About 10x faster than a
    comparison sort on the ~20k targets of a batch, which matters: it runs once per step."""
    keys = ids.numpy()
    if len(keys) == 0 or int(keys.max()) < 1 << 16:
        return torch.from_numpy(keys.astype(np.uint16).argsort(kind="stable"))
    if int(keys.max()) >= 1 << 32:
        return torch.sort(ids, stable=True).indices
    first = (keys & 0xFFFF).astype(np.uint16).argsort(kind="stable")
    second = (keys[first] >> 16).astype(np.uint16).argsort(kind="stable")
    return torch.from_numpy(first[second])


def fused_step_layout(
    batch: dict[str, torch.Tensor], max_run: int = 0
) -> dict[str, torch.Tensor]:
    """The index bookkeeping of :meth:`SkipGram.sgd_step`, from a batch's ``center`` (P,) and
    ``targets`` (P, T) (or ``context`` and ``negatives``): it depends on the ids only, so the
    batch producer computes it in its own thread, ahead of the step.

    - ``targets``: (P, T) context then noise words;
    - ``centre_words`` (K,), ``centre_starts`` (K+1,): runs of consecutive pairs with the same
      centre word (a word's pairs are consecutive in skip-gram batches) and where each starts;
    - ``target_order`` (P*T,): the flattened targets sorted by word; ``target_rows`` (U,) the
      distinct target words, ``target_starts`` (U,) where each one's entries start in that order,
      ``target_centre`` (P*T,) the centre run of each sorted entry.

    ``max_run > 0`` cuts longer runs into runs of at most that many pairs.
    """
    targets = batch.get("targets")
    if targets is None:
        targets = torch.cat([batch["context"].unsqueeze(1), batch["negatives"]], 1)
    centre = batch["center"]
    t = targets.shape[1]
    words, counts = torch.unique_consecutive(centre, return_counts=True)  # (K,), (K,)
    if max_run > 0 and len(counts) and int(counts.max()) > max_run:
        run = torch.repeat_interleave(torch.arange(len(words)), counts)  # (P,)
        first = torch.cumsum(counts, 0) - counts  # (K,) first pair of each run
        piece = (torch.arange(len(centre)) - first[run]) // max_run  # (P,) piece of its run
        _, counts = torch.unique_consecutive(run * len(centre) + piece, return_counts=True)
        words = centre[torch.cumsum(counts, 0) - counts]
    starts = torch.zeros(len(words) + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=starts[1:])
    run_of_pair = torch.repeat_interleave(torch.arange(len(words)), counts)  # (P,)
    order = stable_word_order(targets.reshape(-1))  # (P*T,)
    sorted_targets = targets.reshape(-1).index_select(0, order)
    rows, row_counts = torch.unique_consecutive(sorted_targets, return_counts=True)  # (U,)
    row_starts = torch.cumsum(row_counts, 0) - row_counts  # (U,)
    return {
        "targets": targets,
        "centre_words": words,
        "centre_starts": starts,
        "target_order": order,
        "target_rows": rows,
        "target_starts": row_starts,
        "target_centre": run_of_pair.index_select(0, torch.div(order, t, rounding_mode="floor")),
    }


class PairScores(torch.autograd.Function):
    """scores[b, t] = input[source[b]] . output[targets[b, t]], with a hand-written backward.

    The same numbers as two ``nn.Embedding`` look-ups and a dot product, but autograd's generic
    backward makes about twice as many passes over the (B, T, D) rows; this one makes two (a
    batched product for the input rows, an outer product for the output rows) and hands the
    optimiser row gradients directly (sparse COO, uncoalesced, as ``nn.Embedding(sparse=True)``
    does). The tests compare it with autograd.

    With ``workers > 1`` the batch's rows are split into that many slices computed at once by
    Python threads (each torch op releases the GIL): like gensim's worker threads, without the
    fine-grained barriers of intra-op parallelism, which stall on a loaded machine.
    """

    @staticmethod
    def forward(
        ctx: Any,
        input_weight: torch.Tensor,
        output_weight: torch.Tensor,
        source: torch.Tensor,
        targets: torch.Tensor,
        sparse: bool = True,
        workers: int = 1,
    ) -> torch.Tensor:
        b, t = targets.shape
        d = input_weight.shape[1]
        hidden = input_weight.new_empty(b, d)  # (B, D)
        out = output_weight.new_empty(b, t, d)  # (B, T, D)
        scores = output_weight.new_empty(b, t)  # (B, T)

        def part(lo: int, hi: int) -> None:
            torch.index_select(input_weight, 0, source[lo:hi], out=hidden[lo:hi])
            torch.index_select(
                output_weight, 0, targets[lo:hi].reshape(-1), out=out[lo:hi].view(-1, d)
            )
            torch.linalg.vecdot(out[lo:hi], hidden[lo:hi].unsqueeze(1), out=scores[lo:hi])

        _in_slices(part, b, workers)
        ctx.save_for_backward(source, targets, hidden, out)
        ctx.sparse, ctx.workers = sparse, workers
        ctx.shape = input_weight.shape, output_weight.shape
        return scores

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        source, targets, hidden, out = ctx.saved_tensors
        in_shape, out_shape = ctx.shape
        b, t, d = out.shape
        grad = grad.contiguous()
        grad_hidden = hidden.new_empty(b, d)  # (B, D)
        grad_out = out.new_empty(b, t, d)  # (B, T, D)

        def part(lo: int, hi: int) -> None:
            g = grad[lo:hi]
            torch.bmm(g.unsqueeze(1), out[lo:hi], out=grad_hidden[lo:hi].unsqueeze(1))  # (b, 1, D)
            torch.mul(g.unsqueeze(2), hidden[lo:hi].unsqueeze(1), out=grad_out[lo:hi])  # (b, T, D)

        _in_slices(part, b, ctx.workers)
        flat = targets.reshape(-1)
        rows = grad_out.view(-1, d)  # (B*T, D)
        if ctx.sparse:
            g_in = torch.sparse_coo_tensor(
                source.unsqueeze(0), grad_hidden, in_shape, check_invariants=False
            )
            g_out = torch.sparse_coo_tensor(
                flat.unsqueeze(0), rows, out_shape, check_invariants=False
            )
        else:
            g_in = grad_hidden.new_zeros(in_shape).index_add_(0, source, grad_hidden)
            g_out = rows.new_zeros(out_shape).index_add_(0, flat, rows)
        return g_in, g_out, None, None, None, None


def _consume_csr_beta_warning() -> None:
    """torch warns once per process that sparse CSR support is in beta; take it here, silently
    (the CSR tensors of :meth:`SkipGram.sgd_step` use only the stable sampled_addmm)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.sparse_csr_tensor(
            torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 1), check_invariants=False
        )


_consume_csr_beta_warning()

_MIN_SLICE = 256  # rows; below this a thread hand-off costs more than it saves


class _SharedPool:
    """The process's helper threads for the fused steps: made on first use, grown on demand (the
    smaller pool it replaces is shut down), joined by the interpreter at exit."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.size = 0

    def get(self, size: int) -> ThreadPoolExecutor:
        if self.executor is None or self.size < size:
            if self.executor is not None:
                self.executor.shutdown(wait=False)  # its threads end once idle
            self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ffnlp-w2v")
            self.size = size
        return self.executor


_POOL = _SharedPool()


def _in_slices(
    fn: Callable[[int, int], None], n: int, workers: int, min_slice: int = _MIN_SLICE
) -> None:
    """Run ``fn(lo, hi)`` over ``workers`` contiguous slices of range(n), at the same time."""
    workers = max(1, min(workers, n // min_slice))
    bounds = [n * i // workers for i in range(workers + 1)]
    jobs = [functools.partial(fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    _in_parallel(jobs, workers)


def _in_parallel(jobs: Sequence[Callable[[], Any]], workers: int) -> None:
    """Run independent jobs on up to ``workers`` threads, thread i taking jobs i, i + workers, ..."""

    def run(share: Sequence[Callable[[], Any]]) -> None:
        with torch.no_grad():  # grad mode is per thread
            for job in share:
                job()

    shares = [jobs[i::workers] for i in range(min(max(workers, 1), len(jobs)))]
    if len(shares) == 1:
        run(shares[0])
        return
    pool = _POOL.get(len(shares) - 1)
    futures = [pool.submit(run, share) for share in shares[1:]]
    run(shares[0])
    for f in futures:
        f.result()


def sgns_loss(scores: torch.Tensor) -> torch.Tensor:
    """Mean-valued, sum-gradient negative-sampling loss of scores (B, 1+N), column 0 positive."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    total = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum")
    mean = total / max(scores.shape[0], 1)
    return total - (total - mean).detach()  # value: the mean; gradient: the sum's
