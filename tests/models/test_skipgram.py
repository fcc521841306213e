"""Skip-gram pieces against their definitions: noise sampler, subsampling, windows, the loss.

The kernels (fused step, pair scores, threads) are tested in test_models_kernels_sgns.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ffnlp.models.skipgram import (
    NoiseSampler,
    SkipGram,
    keep_probabilities,
    sgns_loss,
    window_pairs,
)


def test_noise_sampler_matches_count_to_the_075() -> None:
    counts = np.array([1000, 300, 50, 7, 1, 0, 120])
    sampler = NoiseSampler(counts, power=0.75)
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(sampler.probs.numpy(), expected, rtol=1e-12)
    n = 400_000
    draws = sampler.sample((n // 4, 4), torch.Generator().manual_seed(1))
    assert draws.shape == (n // 4, 4) and draws.dtype == torch.int64
    freq = np.bincount(draws.flatten().numpy(), minlength=len(counts)) / n
    sd = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) < 5 * sd + 1e-12), (freq, expected)
    assert freq[5] == 0  # a zero count is never drawn
    # and the chi-square statistic is in range for 5 degrees of freedom (p > 0.001)
    nz = expected > 0
    chi2 = float(((freq[nz] - expected[nz]) ** 2 / expected[nz]).sum() * n)
    assert chi2 < 20.5


def test_noise_sampler_other_power_and_uniform() -> None:
    sampler = NoiseSampler([4, 1], power=1.0)
    np.testing.assert_allclose(sampler.probs.numpy(), [0.8, 0.2])
    uniform = NoiseSampler([9, 1, 5], power=0.0)
    np.testing.assert_allclose(uniform.probs.numpy(), [1 / 3] * 3)


def test_keep_probabilities_follow_word2vec_c_formula() -> None:
    counts = np.array([50_000, 5_000, 500, 50, 5])
    t = 1e-3
    f = counts / counts.sum()
    expected = np.minimum(1.0, (np.sqrt(f / t) + 1) * t / f)  # word2vec.c and gensim
    np.testing.assert_allclose(keep_probabilities(counts, t).numpy(), expected, rtol=1e-6)
    # the most frequent word: f = 50000/55555; by hand
    f0 = 50_000 / 55_555
    assert keep_probabilities(counts, t)[0].item() == pytest.approx(
        (math.sqrt(f0 / t) + 1) * t / f0, rel=1e-6
    )
    assert torch.all(keep_probabilities(counts, 0.0) == 1)


def test_empirical_keep_rate_in_the_batches(tmp_path) -> None:
    from ffnlp.tasks.w2v import EncodedCorpus, PairBatches, resolve_config

    rng = np.random.default_rng(0)
    words = rng.choice(["a", "b", "c", "d"], p=[0.7, 0.2, 0.07, 0.03], size=60_000)
    lines = [" ".join(words[i : i + 30]) for i in range(0, len(words), 30)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = resolve_config(None, ["model.sample=0.05", "model.window=1", "model.min_count=1"])
    corpus = EncodedCorpus.read(path, cfg.corpus, min_count=1)
    source = PairBatches(corpus, cfg.model, prefetch=False)
    # with window 1 every kept word pairs with its kept right neighbour: count centres per word
    g = torch.Generator().manual_seed(0)
    centres = torch.cat([b["center"] for b in source.batches(10**9, g)])
    assert len(corpus.vocab) == 4
    counts = np.asarray(corpus.vocab.counts)
    keep = keep_probabilities(counts, 0.05).numpy()
    # every kept word is a centre once per neighbour it has (1 or 2); compare ratios between words
    per_word = np.bincount(centres.numpy(), minlength=4)
    rate = per_word / counts
    np.testing.assert_allclose(rate / rate[3], keep / keep[3], rtol=0.06)


def test_window_pairs_match_a_direct_loop() -> None:
    sentence = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3])
    window = 3
    centre, context = window_pairs(sentence, window, torch.Generator().manual_seed(5))
    reach = torch.randint(
        1, window + 1, (len(sentence),), generator=torch.Generator().manual_seed(5)
    )
    expected = []
    for i in range(len(sentence)):
        for j in range(i - int(reach[i]), i + int(reach[i]) + 1):
            if j != i and 0 <= j < len(sentence) and sentence[j] == sentence[i]:
                expected.append((i, j))
    assert list(zip(centre.tolist(), context.tolist(), strict=True)) == expected


def test_hand_computed_loss() -> None:
    model = SkipGram(vocab_size=4, dim=2)
    with torch.no_grad():
        model.input.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 0.0], [2.0, 1.0]]))
        model.output.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.5], [0.3, 0.0]]))
    batch = {
        "center": torch.tensor([0, 1]),
        "context": torch.tensor([1, 3]),
        "negatives": torch.tensor([[2, 3], [0, 2]]),
    }

    # pair 1: v = (1, 0); u_pos = (1, 1) -> 1; noise (-1, .5) -> -1, (.3, 0) -> .3
    # pair 2: v = (.5, -1); u_pos = (.3, 0) -> .15; noise (0, 1) -> -1, (-1, .5) -> -1
    def nll(pos: float, negs: list[float]) -> float:
        sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        return -math.log(sig(pos)) - sum(math.log(sig(-s)) for s in negs)

    expected = (nll(1.0, [-1.0, 0.3]) + nll(0.15, [-1.0, -1.0])) / 2
    loss = model.loss(batch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # the gradient is that of the SUM over pairs (word2vec's per-pair SGD): d/dv_0 of pair 1 only
    loss.backward()
    sig = torch.sigmoid
    u = model.output.weight.detach()
    grad_v0 = (
        -(1 - sig(torch.tensor(1.0))) * u[1]
        + sig(torch.tensor(-1.0)) * u[2]
        + sig(torch.tensor(0.3)) * u[3]
    )
    torch.testing.assert_close(model.input.weight.grad.to_dense()[0], grad_v0)


def test_sgns_loss_of_an_empty_batch_is_zero() -> None:
    assert sgns_loss(torch.zeros(0, 6)).item() == 0.0


def test_cbow_loss_runs_and_learns() -> None:
    torch.manual_seed(0)
    model = SkipGram(vocab_size=6, dim=8, cbow=True, sparse=False)
    batch = {
        "center": torch.tensor([1, 2]),
        "context": torch.tensor([0, 3, 4, 5]),
        "offsets": torch.tensor([0, 3]),
        "negatives": torch.tensor([[4, 5], [0, 1]]),
    }
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    first = model.loss(batch).item()
    assert first == pytest.approx(3 * math.log(2), rel=1e-5)  # output vectors start at zero
    for _ in range(50):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    assert model.loss(batch).item() < 0.2 * first


def test_shared_negatives_equal_per_pair_noise_when_the_draws_coincide() -> None:
    # two centres (ids 1 and 4) with 3 and 2 pairs; each centre's pairs reuse its noise words
    torch.manual_seed(0)
    model = SkipGram(vocab_size=8, dim=5)
    with torch.no_grad():
        model.output.weight.normal_()
    noise = torch.tensor([[2, 6], [0, 7]])
    per_pair = {
        "center": torch.tensor([1, 1, 1, 4, 4]),
        "context": torch.tensor([0, 3, 5, 2, 6]),
        "negatives": noise[torch.tensor([0, 0, 0, 1, 1])],
    }
    shared = {
        "context": torch.tensor([0, 3, 5, 2, 6]),
        "center": torch.tensor([1, 4]),
        "pair_center": torch.tensor([0, 0, 0, 1, 1]),
        "noise_weight": torch.tensor([3.0, 2.0]),  # pairs x negative / M with M = negative
        "negatives": noise,
    }
    grads = []
    for batch in (per_pair, shared):
        model.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        grads.append(
            (loss.detach(), model.input.weight.grad.to_dense(), model.output.weight.grad.to_dense())
        )
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
