"""The compiled Hogwild word2vec kernel against a float64 reference of the same SGD updates.

The reference below is written from word2vec's algorithm, not from the kernel: pair by pair, in
corpus order, with the kernel's random stream replayed in plain Python
(:func:`sgns_hogwild.stream` / :func:`sgns_hogwild.next_draw`), so both make the same draws
(windows, noise words) and must then make the same updates up to float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ffnlp import jit
from ffnlp.models.kernels import sgns_hogwild as hw
from ffnlp.models.kernels.sgns_hogwild import HogwildSlice
from ffnlp.models.skipgram import NoiseSampler

pytestmark = pytest.mark.skipif(
    not jit.enabled(), reason="compiled kernels are off here (FFNLP_JIT=0 or numba missing)"
)


def reference(
    w_in: np.ndarray,
    w_out: np.ndarray,
    words: np.ndarray,
    sentence: np.ndarray,
    lo: int,
    hi: int,
    window: int,
    negative: int,
    lr: float,
    seed: int,
    accept: np.ndarray,
    alias: np.ndarray,
    bags: list[list[int]] | None = None,
) -> tuple[float, int]:
    """word2vec's skip-gram SGD (fastText's with ``bags``) in float64, in place; (loss, pairs)."""
    v = w_out.shape[0]
    loss, pairs = 0.0, 0
    for i in range(lo, hi):
        centre = int(words[i])
        state = hw.stream(seed, i)
        state, z = hw.next_draw(state)
        reach = 1 + (z >> 33) % window
        contexts = []
        for direction in (-1, 1):  # the left side first, nearest first
            for step in range(1, reach + 1):
                j = i + direction * step
                if j < 0 or j >= len(words) or sentence[j] != sentence[i]:
                    break
                contexts.append(int(words[j]))
        rows = bags[centre] if bags is not None else [centre]
        for context in contexts:
            h = w_in[rows].mean(0)
            e = np.zeros_like(h)
            targets = [(context, 1.0)]
            for _ in range(negative):
                state, z = hw.next_draw(state)
                slot = ((z >> 32) * v) >> 32
                coin = (z & 0xFFFFFFFF) / 2**32
                noise = slot if coin < accept[slot] else int(alias[slot])
                if noise != context:
                    targets.append((noise, 0.0))
            for target, label in targets:
                f = float(h @ w_out[target])
                if f > hw.MAX_EXP:
                    p = 1.0
                elif f < -hw.MAX_EXP:
                    p = 0.0
                else:
                    p = 1.0 / (1.0 + math.exp(-f))
                loss += math.log1p(math.exp(-f)) if label else math.log1p(math.exp(f))
                g = lr * (label - p)
                e += g * w_out[target]
                w_out[target] += g * h
            for r in rows:
                w_in[r] += e
            pairs += 1
    return loss, pairs


def corpus(v: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` word ids (Zipf-like over ``v`` words) and sentence numbers (sentences of 1-12)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, v + 1)
    words = rng.choice(v, size=n, p=p / p.sum()).astype(np.int64)
    lengths = rng.integers(1, 13, size=n)
    sentence = np.repeat(np.arange(n), lengths)[:n].astype(np.int64)
    return words, sentence


def tables_for(v: int, d: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_in = rng.uniform(-0.5, 0.5, size=(rows, d)).astype(np.float32)
    w_out = rng.uniform(-0.5, 0.5, size=(v, d)).astype(np.float32)  # not zero: every term counts
    return w_in, w_out


def run_kernel(
    w_in: np.ndarray,
    w_out: np.ndarray,
    words: np.ndarray,
    sentence: np.ndarray,
    lo: int,
    hi: int,
    noise: NoiseSampler,
    seed: int,
    table_size: int,
    bags: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, int]:
    train = hw.train_slice.compiled()
    assert train is not None
    sig, softplus = hw.tables(table_size)
    rows, offsets = bags if bags is not None else (np.zeros(1, np.int64), np.zeros(1, np.int64))
    return train(  # type: ignore[no-any-return]
        w_in, w_out, words, sentence, lo, hi, 3, 4, 0.05, np.uint64(seed),
        noise.accept.numpy(), noise.alias.numpy(), sig, softplus, rows, offsets, bags is not None,
    )  # fmt: skip


@pytest.mark.parametrize("table_size, atol", [(10**6, 2e-5), (hw.TABLE_SIZE, 3e-3)])
def test_word2vec_kernel_matches_float64_reference(table_size: int, atol: float) -> None:
    v, d = 15, 8
    words, sentence = corpus(v, 300, seed=1)
    counts = np.bincount(words, minlength=v) + 1
    noise = NoiseSampler(counts)
    w_in, w_out = tables_for(v, d, v, seed=2)
    ref_in, ref_out = w_in.astype(np.float64), w_out.astype(np.float64)
    seed = 12345678901234567
    loss, pairs = run_kernel(w_in, w_out, words, sentence, 0, len(words), noise, seed, table_size)
    ref_loss, ref_pairs = reference(
        ref_in, ref_out, words, sentence, 0, len(words), 3, 4, 0.05, seed,
        noise.accept.numpy(), noise.alias.numpy(),
    )  # fmt: skip
    assert pairs == ref_pairs > 500
    assert not np.allclose(ref_in, tables_for(v, d, v, seed=2)[0], atol=1e-2)  # it did train
    np.testing.assert_allclose(w_in, ref_in, atol=atol, rtol=0)
    np.testing.assert_allclose(w_out, ref_out, atol=atol, rtol=0)
    assert loss / pairs == pytest.approx(ref_loss / ref_pairs, rel=10 * atol)


@pytest.mark.parametrize("table_size, atol", [(10**6, 2e-5), (hw.TABLE_SIZE, 3e-3)])
def test_subword_kernel_matches_float64_reference(table_size: int, atol: float) -> None:
    v, d, buckets = 12, 6, 9
    words, sentence = corpus(v, 250, seed=3)
    rng = np.random.default_rng(4)
    # each word's bag: its own row, then 0-4 bucket rows (a repeated bucket counts twice)
    bags = [[w] + list(v + rng.integers(0, buckets, size=rng.integers(0, 5))) for w in range(v)]
    rows = np.asarray([r for bag in bags for r in bag], dtype=np.int64)
    offsets = np.cumsum([0] + [len(b) for b in bags]).astype(np.int64)
    noise = NoiseSampler(np.bincount(words, minlength=v) + 1)
    w_in, w_out = tables_for(v, d, v + buckets, seed=5)
    ref_in, ref_out = w_in.astype(np.float64), w_out.astype(np.float64)
    seed = 99
    loss, pairs = run_kernel(
        w_in, w_out, words, sentence, 0, len(words), noise, seed, table_size, (rows, offsets)
    )
    ref_loss, ref_pairs = reference(
        ref_in, ref_out, words, sentence, 0, len(words), 3, 4, 0.05, seed,
        noise.accept.numpy(), noise.alias.numpy(), bags,
    )  # fmt: skip
    assert pairs == ref_pairs > 400
    np.testing.assert_allclose(w_in, ref_in, atol=atol, rtol=0)
    np.testing.assert_allclose(w_out, ref_out, atol=atol, rtol=0)
    assert loss / pairs == pytest.approx(ref_loss / ref_pairs, rel=10 * atol)


def test_draws_do_not_depend_on_how_the_centres_are_split() -> None:
    """Two calls over halves make the same pairs, noise words and updates as one call over all
    (what lets threads take pieces of a batch in any order and still draw the same)."""
    v, d = 40, 10
    words, sentence = corpus(v, 500, seed=6)
    noise = NoiseSampler(np.bincount(words, minlength=v) + 1)
    one = tables_for(v, d, v, seed=7)
    two = tables_for(v, d, v, seed=7)
    whole = run_kernel(*one, words, sentence, 0, 500, noise, 5, hw.TABLE_SIZE)
    first = run_kernel(*two, words, sentence, 0, 237, noise, 5, hw.TABLE_SIZE)
    second = run_kernel(*two, words, sentence, 237, 500, noise, 5, hw.TABLE_SIZE)
    assert whole[1] == first[1] + second[1]
    assert whole[0] == pytest.approx(first[0] + second[0], rel=1e-6)
    np.testing.assert_allclose(one[0], two[0], atol=1e-6)
    np.testing.assert_allclose(one[1], two[1], atol=1e-6)


def test_each_centre_has_a_stream_of_its_own() -> None:
    """No number among the first 100 draws of a centre's stream turns up in another centre's
    (streams started at ``seed + (i + 1) * golden`` unhashed would give centre ``i + 1`` the
    draws of centre ``i`` shifted by one)."""
    first: dict[int, int] = {}
    for centre in range(300):
        state = hw.stream(2024, centre)
        for _ in range(100):
            state, z = hw.next_draw(state)
            assert first.setdefault(z, centre) == centre


def test_neighbouring_centres_draw_their_own_noise_words() -> None:
    """The noise words the kernel trains against, read back from the output table: neighbouring
    centres share about as many as independent draws would (10 of 1,000 equally likely words:
    0.1 in common on average), not most of them (as when centre ``i + 1``'s draws were centre
    ``i``'s shifted by one, which made about 2 * window * negative neighbours share each noise
    word and cost WordSim-353 about 0.03 on PTB).

    Each of the 200 centres is a word of its own with a one-hot input row and exactly one context
    word (sentences of two words); the output table starts at zero and the learning rate is
    small, so after one pass ``w_out[t, c]`` is about ``-lr / 2`` times the number of times centre
    ``c`` drew noise word ``t`` (``+lr / 2`` for its context word)."""
    k, v, negative, lr = 200, 1000, 10, 1e-3
    words = np.arange(k, dtype=np.int64)
    sentence = np.arange(k, dtype=np.int64) // 2
    w_in = np.zeros((v, k), dtype=np.float32)
    w_in[np.arange(k), np.arange(k)] = 1.0
    w_out = np.zeros((v, k), dtype=np.float32)
    noise = NoiseSampler(np.ones(v))
    train = hw.train_slice.compiled()
    assert train is not None
    sig, softplus = hw.tables()
    _, pairs = train(
        w_in, w_out, words, sentence, 0, k, 2, negative, lr, np.uint64(31),
        noise.accept.numpy(), noise.alias.numpy(), sig, softplus,
        np.zeros(1, np.int64), np.zeros(1, np.int64), False,
    )  # fmt: skip
    assert pairs == k
    drawn = w_out < -lr / 4  # (v, k) noise word t drawn by centre c
    per_centre = drawn.sum(0)
    assert per_centre.min() >= 8 and per_centre.max() <= negative  # repeats of a word merge
    shared = (drawn[:, 1:] & drawn[:, :-1]).sum(0)  # (k-1,) noise words centre c shares with c+1
    assert shared.mean() < 0.5


def test_threads_share_a_batch() -> None:
    """hogwild_step with 2 workers trains every centre once: the same number of pairs as 1
    worker, a loss close to its (the updates race, so not equal), and both tables changed."""
    v, d, n = 2000, 16, 6000
    words, sentence = corpus(v, n, seed=8)
    noise = NoiseSampler(np.bincount(words, minlength=v) + 1)
    part = HogwildSlice(words, sentence, 0, n, 77, 5, 5, noise.accept.numpy(), noise.alias.numpy())
    results = []
    for workers in (1, 2):
        w_in = torch.from_numpy(tables_for(v, d, v, seed=9)[0])
        w_out = torch.zeros(v, d)
        loss = hw.hogwild_step(w_in, w_out, part, 0.025, workers=workers)
        assert loss is not None and math.isfinite(loss)
        assert bool(w_out.abs().sum() > 0)
        results.append(loss)
    assert results[1] == pytest.approx(results[0], rel=0.02)


def test_declines_tables_it_cannot_take() -> None:
    words, sentence = corpus(10, 50, seed=1)
    noise = NoiseSampler(np.ones(10))
    part = HogwildSlice(words, sentence, 0, 50, 1, 2, 2, noise.accept.numpy(), noise.alias.numpy())
    doubles = torch.zeros(10, 4, dtype=torch.float64)
    assert hw.hogwild_step(doubles, doubles.clone(), part, 0.1) is None
