"""The compiled word2vec step: skip-gram with negative sampling, pair by pair, Hogwild.

What gensim's ``word2vec_inner`` and fastText's trainer do, as a Numba kernel (see
:mod:`ffnlp.jit`): each (centre, context) pair is one plain-SGD update at once, in corpus order;
several Python threads run the kernel over disjoint slices of a batch's centre words at the same
time (the kernel releases the GIL) and write the shared tables without locks (Hogwild, Recht et
al. 2011: the rows two threads touch at once are few, and a lost update costs nothing measurable).

For each kept centre word (frequent words are already sub-sampled, chunk by chunk: see
:class:`ffnlp.tasks.w2v.batches.PairBatches`) the kernel

1. draws the centre's window ``b`` uniformly from 1..window (word2vec's reduced window: near words
   count more) and walks up to ``b`` kept words to each side inside the same sentence, the left
   side first, nearest first;
2. for each context word: with the centre vector ``h`` (the centre's input row; with subwords
   the mean of its bag of rows), for the context word (label 1) and ``negative`` noise words
   drawn from ``count ** 0.75`` (label 0; a noise word equal to the context word is skipped, as
   gensim does): ``f = h . u``, ``g = lr * (label - sigmoid(f))``, ``e += g u``, ``u += g h``;
   then ``e`` is the pair's step on the centre's input row (with subwords, on every row of its
   bag in full: fastText's update). The pair's targets are drawn and scored first (their rows
   are loaded side by side rather than one after the other's step), then stepped in turn; a
   noise word drawn twice is scored again after its first step, so the updates are those of one
   target after the other.

The centre's rows are read by its own pairs only, so the kernel keeps ``h`` up to date as the
pairs' steps would move it (``h += e``; with a bag whose rows repeat, by the exact factor) and
adds the steps to the rows once, after the centre's last pair: the same numbers as updating
the rows after every pair and averaging them again (what the tests' reference does, and
fastText), without a pass over the bag per pair.

sigmoid and the loss's ``-log sigmoid`` come from tables over [-6, 6] (:data:`TABLE_SIZE` cells,
word2vec's ``EXP_TABLE``), outside of which the step is ``lr * (label - 0 or 1)``. The loss
returned is the sum over pairs of ``-log sigmoid(f_context) - sum log sigmoid(-f_noise)`` at the
weights each pair met.

Random numbers come from a counter-based generator, one stream per centre: SplitMix64 (a
Weyl sequence, ``state += golden``, each state hashed by SplitMix64's mixing function) started at
``mix(seed + (i + 1) * golden)``, ``i`` the centre's index among the chunk's kept words. The
start is hashed so that the streams of neighbouring centres are far apart on the sequence: were
it ``seed + (i + 1) * golden`` itself, centre ``i + 1``'s draws would be centre ``i``'s shifted by
one, so about 2 * window * negative neighbouring centres would share each noise word. The window
draw and every noise draw of a centre depend only on the seed and the centre, not on the thread
or the slice that takes it, so any number of threads makes the same draws. The functions
:func:`stream` and :func:`next_draw` are the same generator in plain Python, for the tests'
float64 reference.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ffnlp.jit import kernel
from ffnlp.models.kernels.threads import in_parallel

MAX_EXP = 6.0  # the tables cover scores in [-MAX_EXP, MAX_EXP] (word2vec's MAX_EXP)
TABLE_SIZE = 1000  # cells (word2vec's EXP_TABLE_SIZE)

GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class HogwildSlice:
    """One batch of the compiled Hogwild step: centres ``lo..hi-1`` of a chunk's kept words.

    The chunk's arrays are shared by all its batches (no copy); ``seed`` (drawn once per chunk
    and epoch from the run's generator) seeds the kernel's window and noise draws."""

    words: np.ndarray  # (K,) int64 the chunk's words left by sub-sampling, in corpus order
    sentence: np.ndarray  # (K,) int64 the sentence number of each
    lo: int
    hi: int
    seed: int
    window: int
    negative: int
    noise_accept: np.ndarray  # (V,) float32 the noise distribution's alias table
    noise_alias: np.ndarray  # (V,) int64

    @property
    def centres(self) -> int:
        return self.hi - self.lo


@functools.cache
def tables(size: int = TABLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(sigmoid, softplus)`` at the centres of ``size`` cells over [-MAX_EXP, MAX_EXP] (float32).

    A score f falls in cell ``int((f + MAX_EXP) * size / (2 * MAX_EXP))``; ``softplus(x) =
    -log sigmoid(-x)`` gives the loss of a noise word, ``softplus(-x)`` the context word's."""
    x = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 * MAX_EXP - MAX_EXP
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    softplus = np.logaddexp(0.0, x)
    return sigmoid.astype(np.float32), softplus.astype(np.float32)


def mix(z: int) -> int:
    """SplitMix64's output function on a 64-bit integer (plain Python; the kernel inlines it)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def stream(seed: int, centre: int) -> int:
    """The state that starts the kernel's random stream for the kept word ``centre`` of a chunk
    drawn with ``seed`` (plain Python, as the kernel computes it): ``mix(seed + (centre + 1) *
    golden)``, a point of the sequence unrelated to the next centre's; :func:`next_draw` advances it.
    The first number sets the window, ``1 + (z >> 33) % window``; each noise draw takes alias slot
    ``((z >> 32) * V) >> 32``, kept when ``(z & 0xFFFFFFFF) / 2**32 < accept[slot]``."""
    return mix(seed + (centre + 1) * GOLDEN)


def next_draw(state: int) -> tuple[int, int]:
    """``(new_state, z)``: the next 64-bit number of a stream (see :func:`stream`)."""
    state = (state + GOLDEN) & _MASK
    return state, mix(state)


@kernel(fastmath=True)
def train_slice(
    w_in: np.ndarray,  # (rows, D) float32 input table (words, then n-gram buckets)
    w_out: np.ndarray,  # (V, D) float32 output table
    words: np.ndarray,  # (K,) int64 the chunk's kept words, in corpus order
    sentence: np.ndarray,  # (K,) int64 their sentence numbers
    lo: int,  # centres lo..hi-1 (indices into words)
    hi: int,
    window: int,
    negative: int,
    lr: float,
    seed: np.uint64,
    accept: np.ndarray,  # (V,) float32 alias method: slot i keeps itself with this probability
    alias: np.ndarray,  # (V,) int64 ... else becomes alias[i]
    sig: np.ndarray,  # (T,) float32 sigmoid table
    softplus: np.ndarray,  # (T,) float32 softplus table
    bag_rows: np.ndarray,  # (R,) int64 subwords: word i's rows are bag_rows[bag_offsets[i]:...]
    bag_offsets: np.ndarray,  # (V+1,) int64
    subwords: bool,  # False: a word's input row is its own (bag_rows unused)
) -> tuple[float, int]:
    """Train on the centres ``lo..hi-1`` of a chunk's kept words; returns (loss sum, pairs)."""
    d = w_in.shape[1]
    v = w_out.shape[0]
    k = words.shape[0]
    t = sig.shape[0]
    scale = t / (2.0 * MAX_EXP)
    golden = np.uint64(GOLDEN)
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    low32 = np.uint64(0xFFFFFFFF)
    s30, s27, s31, s32, s33 = (
        np.uint64(30),
        np.uint64(27),
        np.uint64(31),
        np.uint64(32),
        np.uint64(33),
    )
    v64 = np.uint64(v)
    hidden = np.empty(d, dtype=np.float32)
    grad = np.empty(d, dtype=np.float32)
    total = np.empty(d, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    scores = np.empty(negative + 1, dtype=np.float32)
    loss = 0.0
    pairs = 0
    for i in range(lo, hi):
        centre = words[i]
        sent = sentence[i]
        # the centre's stream starts at a hashed point of the sequence (see stream())
        z = seed + np.uint64(i + 1) * golden
        z = (z ^ (z >> s30)) * m1
        z = (z ^ (z >> s27)) * m2
        state = z ^ (z >> s31)
        # the window: first number of the centre's stream
        state += golden
        z = state
        z = (z ^ (z >> s30)) * m1
        z = (z ^ (z >> s27)) * m2
        z = z ^ (z >> s31)
        reach = 1 + np.int64((z >> s33) % np.uint64(window))
        # the centre vector: its row, or the mean of its bag of rows
        gain = np.float32(1.0)
        if subwords:
            first = bag_offsets[centre]
            last = bag_offsets[centre + 1]
            for c in range(d):
                hidden[c] = 0.0
            repeats = 0  # entries of the bag that share a row with another entry, counted twice
            for r in range(first, last):
                row = bag_rows[r]
                for c in range(d):
                    hidden[c] += w_in[row, c]
                for q in range(first, last):
                    if q != r and bag_rows[q] == row:
                        repeats += 1
            inv = np.float32(1.0 / (last - first))
            for c in range(d):
                hidden[c] *= inv
            # adding e to every entry's row moves the mean by e * (sum over entries of their
            # row's count) / entries: e when the rows are distinct
            gain = np.float32((last - first + repeats) / (last - first))
        else:
            first = 0
            last = 0
            for c in range(d):
                hidden[c] = w_in[centre, c]
        for c in range(d):
            total[c] = 0.0
        stepped = False
        for side in range(2):
            for step in range(1, reach + 1):
                j = i - step if side == 0 else i + step
                if j < 0 or j >= k or sentence[j] != sent:
                    break
                context = words[j]
                for c in range(d):
                    grad[c] = 0.0
                # the pair's targets first (the context word, then the noise words that are
                # not it), and their scores: independent rows, loaded side by side
                targets[0] = context
                nt = 1
                for _ in range(negative):
                    state += golden
                    z = state
                    z = (z ^ (z >> s30)) * m1
                    z = (z ^ (z >> s27)) * m2
                    z = z ^ (z >> s31)
                    slot = np.int64(((z >> s32) * v64) >> s32)
                    coin = np.float64(z & low32) * (1.0 / 4294967296.0)
                    target = slot if coin < accept[slot] else alias[slot]
                    if target != context:
                        targets[nt] = target
                        nt += 1
                for q in range(nt):
                    f = np.float32(0.0)
                    for c in range(d):
                        f += hidden[c] * w_out[targets[q], c]
                    scores[q] = f
                # then the steps, target by target: a noise word drawn twice meets its row as
                # the earlier step left it (scored again), as in one target after the other
                for q in range(nt):
                    target = targets[q]
                    label = 1.0 if q == 0 else 0.0
                    f = scores[q]
                    for r in range(1, q):
                        if targets[r] == target:
                            f = np.float32(0.0)
                            for c in range(d):
                                f += hidden[c] * w_out[target, c]
                            break
                    if f > MAX_EXP:
                        g = (label - 1.0) * lr
                        loss += 0.0 if label == 1.0 else float(f)
                    elif f < -MAX_EXP:
                        g = label * lr
                        loss += -float(f) if label == 1.0 else 0.0
                    else:
                        cell = int((f + MAX_EXP) * scale)
                        if cell >= t:
                            cell = t - 1
                        g = (label - sig[cell]) * lr
                        if label == 1.0:
                            loss += softplus[t - 1 - cell]
                        else:
                            loss += softplus[cell]
                    gf = np.float32(g)
                    for c in range(d):
                        grad[c] += gf * w_out[target, c]
                        w_out[target, c] += gf * hidden[c]
                # the pair's step reaches the centre's rows (added below, once per centre):
                # the centre vector the next pair meets moves with them
                for c in range(d):
                    hidden[c] += gain * grad[c]
                    total[c] += grad[c]
                pairs += 1
                stepped = True
        if stepped:
            if subwords:  # fastText's update: the whole step to every row of the bag
                for r in range(first, last):
                    row = bag_rows[r]
                    for c in range(d):
                        w_in[row, c] += total[c]
            else:
                for c in range(d):
                    w_in[centre, c] += total[c]
    return loss, pairs


PIECE = 64  # kept centres per kernel call when threads share a batch (about 0.1 ms of work)


def hogwild_step(
    input_weight: torch.Tensor,
    output_weight: torch.Tensor,
    part: HogwildSlice,
    lr: float,
    workers: int = 1,
    subwords: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float | None:
    """Train on one batch (:class:`HogwildSlice`) with the compiled
    kernel, in place on the two tables; returns the mean loss over its pairs (0 for a batch
    without pairs), or None where compiled kernels are off or the tables are not float32 on the
    CPU (the caller then takes another path).

    With ``workers > 1`` that many threads (this one and the pool's) take pieces of
    :data:`PIECE` centres in turn until none is left, so a thread the machine slows down takes
    fewer pieces instead of holding the others up; they share the tables without locks.
    ``subwords = (rows, offsets)``: fastText's model (a word's input rows in CSR form)."""
    train = train_slice.compiled()
    if train is None or not _fits(input_weight, output_weight):
        return None
    w_in, w_out = input_weight.detach().numpy(), output_weight.detach().numpy()
    sig, softplus = tables()
    if subwords is None:
        rows = offsets = np.zeros(1, dtype=np.int64)
    else:
        rows, offsets = subwords[0].numpy(), subwords[1].numpy()
    seed = np.uint64(part.seed)

    def run(lo: int, hi: int) -> tuple[float, int]:
        return train(
            w_in, w_out, part.words, part.sentence, lo, hi, part.window, part.negative, lr,
            seed, part.noise_accept, part.noise_alias, sig, softplus, rows, offsets,
            subwords is not None,
        )  # fmt: skip

    n = part.hi - part.lo
    if workers <= 1 or n < 2 * PIECE:
        loss, pairs = run(part.lo, part.hi)
    else:
        bounds = list(range(part.lo, part.hi, PIECE)) + [part.hi]
        results: list[tuple[float, int]] = [(0.0, 0)] * (len(bounds) - 1)
        turn = itertools.count()  # next() is atomic under the GIL: each piece goes to one thread

        def worker() -> None:
            while (p := next(turn)) < len(results):
                results[p] = run(bounds[p], bounds[p + 1])

        in_parallel([worker] * min(workers, len(results)), workers)
        loss, pairs = sum(r[0] for r in results), sum(r[1] for r in results)
    return loss / pairs if pairs else 0.0


def _fits(*tables: torch.Tensor) -> bool:
    return all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tables
    )


def warm_up() -> bool:
    """Compile the kernel (or load it from Numba's disk cache) now, on empty input of the types
    :func:`hogwild_step` passes, so that a run's training time does not include it (about 2 s
    the first time on a machine, a tenth of that from the cache); False where compiled kernels
    are off."""
    train = train_slice.compiled()
    if train is None:
        return False
    table = np.zeros((1, 1), dtype=np.float32)
    ids = np.zeros(1, dtype=np.int64)
    sig, softplus = tables()
    for subwords in (False, True):
        train(
            table, table, ids, ids, 0, 0, 1, 1, 0.0, np.uint64(0),
            np.ones(1, dtype=np.float32), ids, sig, softplus, ids, ids, subwords,
        )  # fmt: skip
    return True
