"""Word2vec (skip-gram, negative sampling) kernels for CPUs.

- :func:`sgd_step`: one plain-SGD step without autograd, in three sparse products; the same
  update as ``SkipGram.loss(batch).backward()`` followed by ``SGD(lr).step()``; with
  ``subwords`` the fastText variant (``SubwordSkipGram``), whose centre vectors are the means of
  bags of rows;
- :func:`fused_step_layout` (with :func:`stable_word_order`), and :func:`subword_step_layout`
  for the fastText variant: the step's index bookkeeping, which depends on the word ids only, so
  the batch producer computes it ahead in its own thread;
- :class:`PairScores`: the autograd path's pair scores with a hand-written backward.

:class:`ffnlp.models.skipgram.SkipGram` uses them when built with ``fused=True`` (the default);
its plain PyTorch reference (``fused=False``) is two embedding look-ups and a dot product.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ffnlp.models.kernels.threads import MIN_SLICE, in_parallel, in_slices


@torch.no_grad()
def sgd_step(
    input_weight: torch.Tensor,
    output_weight: torch.Tensor,
    batch: dict[str, torch.Tensor],
    lr: float,
    workers: int = 1,
    subwords: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor | None:
    """One plain-SGD step on a skip-gram batch, in place on the two tables; returns the mean loss.

    The same update as ``loss(batch).backward()`` followed by ``SGD(lr).step()`` (every gradient
    from the weights as they were before the step), in three sparse products that never build the
    (pairs x targets x D) tensor of gathered output rows:

    - scores: a sampled dense-dense product (SDDMM), ``s = v_c . u_w`` only where a centre word
      meets one of its pairs' targets (context word or noise word);
    - centre steps: an embedding bag over each centre's targets weighted by the steps
      ``g = lr * (label - sigmoid(s))``, i.e. ``sum g u_w``, added to the centre's row;
    - output steps: an embedding bag over the centre vectors, one bag per distinct target word
      (``sum g v_c``), added to that word's row.

    ``subwords = (rows, offsets)``: fastText's skip-gram. Word i's input rows are
    ``rows[offsets[i]:offsets[i + 1]]`` (its own row and its character n-grams' buckets, a
    ``SubwordTable`` in CSR form); its centre vector is the mean of those rows, and its centre step
    is added to every one of them in full (fastText's unsupervised update: the gradient is not
    divided among the rows). The bags and the grouping of their rows come from
    :func:`subword_step_layout`.

    The grouping comes from :func:`fused_step_layout` (the batch producer computes it ahead;
    otherwise it is computed here). With ``workers > 1`` threads share the centres for the scores
    and centre steps, then the tables' row updates, each thread writing rows no other thread
    writes: the result does not depend on timing. Returns None for a batch it does not handle (a
    table on a GPU, more targets per pair than words); the caller then takes the autograd path.
    """
    w_in, w_out = input_weight, output_weight
    if w_in.device.type != "cpu":  # written for CPUs (its index layout sorts with NumPy)
        return None
    v, d = w_out.shape  # v words (the input table has more rows with subwords)
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
        batch.pop("bag_rows", None)  # the runs changed: so do their bags
        starts = batch["centre_starts"]
    _quiet_csr_beta_warning()
    words = batch["centre_words"]  # (K,) each run of pairs sharing a centre word
    k = len(words)
    flat = targets.view(-1)  # (P*T,)
    if subwords is None:
        hidden = w_in.index_select(0, words)  # (K, D) centre vectors
    else:  # each centre vector is the mean of its bag of rows, computed slice by slice below
        if "bag_rows" not in batch:
            batch = {**batch, **subword_step_layout(words, *subwords)}
        bag_rows, bag_starts = batch["bag_rows"], batch["bag_starts"]  # (R,), (K+1,)
        bag_cuts = bag_starts.tolist()
        hidden = w_in.new_empty(k, d)  # (K, D)
    steps = w_in.new_empty(p, t)  # (P, T) g
    centre_steps = w_in.new_empty(k, d)  # (K, D)
    losses = w_in.new_empty(p)  # (P,)
    cuts = starts.tolist()

    def centres(lo: int, hi: int) -> None:  # centres lo..hi-1, pairs a..b-1
        a, b = cuts[lo], cuts[hi]
        if subwords is not None:  # rows ra..rb-1 make the bags of these centres
            ra, rb = bag_cuts[lo], bag_cuts[hi]
            hidden[lo:hi] = F.embedding_bag(
                bag_rows[ra:rb], w_in, bag_starts[lo:hi] - ra, mode="mean"
            )  # (n, D)
        ends = (starts[lo : hi + 1] - a) * t  # (n+1,) row starts of the pattern
        pattern = torch.sparse_csr_tensor(
            ends,
            flat[a * t : b * t],
            w_in.new_zeros((b - a) * t),
            (hi - lo, v),
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

    in_slices(centres, k, workers, min_slice=MIN_SLICE // 4)
    order, rows, row_starts, owner = (
        batch["target_order"],
        batch["target_rows"],
        batch["target_starts"],
        batch["target_centre"],
    )
    weights = steps.view(-1).index_select(0, order)  # (P*T,) g in target order
    row_cuts = row_starts.tolist() + [len(order)]

    def output_rows(lo: int, hi: int) -> None:  # distinct targets lo..hi-1
        a, b = row_cuts[lo], row_cuts[hi]
        update = F.embedding_bag(
            owner[a:b],
            hidden,
            row_starts[lo:hi] - a,
            mode="sum",
            per_sample_weights=weights[a:b],
        )  # (n, D) sum of g v_c for each target word
        w_out.index_add_(0, rows[lo:hi], update)

    # the output rows in ranges of about equal work; then the centre rows
    jobs: list[Callable[[], Any]] = [
        functools.partial(output_rows, lo, hi)
        for lo, hi in _ranges(row_starts, len(order), workers)
    ]
    if subwords is None:
        jobs.append(functools.partial(w_in.index_add_, 0, words, centre_steps))
    else:  # every row of a bag gets its centre's whole step: a bag of steps per distinct row
        in_rows, in_starts, in_owner = (
            batch["input_rows"],
            batch["input_starts"],
            batch["input_owner"],
        )
        in_cuts = in_starts.tolist() + [len(in_owner)]

        def input_rows(lo: int, hi: int) -> None:  # distinct input rows lo..hi-1
            a, b = in_cuts[lo], in_cuts[hi]
            update = F.embedding_bag(
                in_owner[a:b], centre_steps, in_starts[lo:hi] - a, mode="sum"
            )  # (n, D) sum of the steps of the centres whose bags hold each row
            w_in.index_add_(0, in_rows[lo:hi], update)

        jobs += [
            functools.partial(input_rows, lo, hi)
            for lo, hi in _ranges(in_starts, len(in_owner), workers)
        ]
    in_parallel(jobs, workers)
    return losses.mean()


def _ranges(starts: torch.Tensor, total: int, workers: int) -> list[tuple[int, int]]:
    """Up to ``workers`` ranges of the groups whose entries begin at ``starts`` (U,) (``total``
    entries in all), each range with about the same number of entries."""
    u = len(starts)
    parts = max(1, min(workers, u // 64))
    inner = torch.searchsorted(starts, torch.arange(1, parts) * (total / parts))
    bounds = [0, *inner.tolist(), u]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]


@functools.cache
def _quiet_csr_beta_warning() -> None:
    """torch warns once per process that sparse CSR support is in beta; take that warning here,
    silently, once, before the first step (the CSR tensors of :func:`sgd_step` feed only the
    stable ``sampled_addmm``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.sparse_csr_tensor(
            torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 1), check_invariants=False
        )


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


def fused_step_layout(batch: dict[str, torch.Tensor], max_run: int = 0) -> dict[str, torch.Tensor]:
    """The index bookkeeping of :func:`sgd_step`, from a batch's ``center`` (P,) and ``targets``
    (P, T) (or ``context`` and ``negatives``): it depends on the ids only, so the batch producer
    computes it in its own thread, ahead of the step.

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


def subword_bags(
    words: torch.Tensor, table_rows: torch.Tensor, table_offsets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bags of rows of ``words`` (K,) in a subword table in CSR form (word i's rows are
    ``table_rows[table_offsets[i]:table_offsets[i + 1]]``): ``rows`` (R,) the bags back to back,
    ``starts`` (K+1,) where each bag starts (R at the end), ``owner`` (R,) the bag of each row."""
    k = len(words)
    first = table_offsets.index_select(0, words)  # (K,)
    lengths = table_offsets.index_select(0, words + 1) - first  # (K,)
    starts = lengths.new_zeros(k + 1)
    torch.cumsum(lengths, 0, out=starts[1:])
    owner = torch.repeat_interleave(torch.arange(k, device=words.device), lengths)  # (R,)
    # each entry's place in the table: its word's first row + its position inside the bag
    place = torch.arange(len(owner), device=words.device) + (first - starts[:-1])[owner]
    return table_rows.index_select(0, place), starts, owner


def subword_step_layout(
    centre_words: torch.Tensor, table_rows: torch.Tensor, table_offsets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The fastText step's bookkeeping for centre words (K,) and a subword table in CSR form:

    - ``bag_rows`` (R,), ``bag_starts`` (K+1,): the rows of each centre word's bag, back to back,
      and where each bag starts (see :func:`subword_bags`);
    - ``input_rows`` (U,) the distinct rows of all the bags, ``input_starts`` (U,) where each
      one's entries start in row order, ``input_owner`` (R,) the centre of each entry in that
      order: who adds its step to which row, grouped so that threads write disjoint rows.
    """
    bag_rows, bag_starts, owner = subword_bags(centre_words, table_rows, table_offsets)
    order = stable_word_order(bag_rows)  # (R,)
    rows, counts = torch.unique_consecutive(bag_rows.index_select(0, order), return_counts=True)
    return {
        "bag_rows": bag_rows,
        "bag_starts": bag_starts,
        "input_rows": rows,
        "input_starts": torch.cumsum(counts, 0) - counts,
        "input_owner": owner.index_select(0, order),
    }


class PairScores(torch.autograd.Function):
    """scores[b, t] = input[source[b]] . output[targets[b, t]], with a hand-written backward.

    The same numbers as two ``nn.Embedding`` look-ups and a dot product, but autograd's generic
    backward makes about twice as many passes over the (B, T, D) rows; this one makes two (a
    batched product for the input rows, an outer product for the output rows) and hands the
    optimiser row gradients directly (sparse COO, uncoalesced, as ``nn.Embedding(sparse=True)``
    does). The tests compare it with autograd.

    With ``workers > 1`` the batch's rows are split into that many slices computed at once by
    Python threads (see :mod:`ffnlp.models.kernels.threads`).
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

        in_slices(part, b, workers)
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

        in_slices(part, b, ctx.workers)
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
