"""Interpolated modified Kneser-Ney: normalisation, consistency, and a from-the-definition reference."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from ffnlp.errors import ModelFileError
from ffnlp.models.kneser_ney import KneserNey, discounts
from ffnlp.tasks.lm import load, train_lm
from tests.conftest import shared_data

EOS = 0


def random_stream(rng: np.random.Generator, sentences: int, vocab: int) -> tuple[np.ndarray, list]:
    """A Zipf-ish random corpus as the id stream ``</s> s1 </s> s2 </s> ...`` and as sentences."""
    sents = []
    weights = 1.0 / np.arange(1, vocab)
    weights /= weights.sum()
    for _ in range(sentences):
        length = int(rng.integers(1, 9))
        sents.append([int(x) for x in rng.choice(np.arange(1, vocab), size=length, p=weights)])
    stream = [EOS]
    for s in sents:
        stream += s + [EOS]
    return np.array(stream), sents


class ReferenceKN:
    """Interpolated modified KN written straight from the definitions, with dicts (slow, clear)."""

    def __init__(self, sents: list[list[int]], order: int, vocab: int):
        self.order, self.V = order, vocab
        raw: dict[int, Counter] = defaultdict(Counter)
        for s in sents:
            toks = [EOS] + s + [EOS]  # the first EOS is <s>
            for n in range(1, order + 1):
                for i in range(len(toks) - n + 1):
                    if n == 1 and i == 0:
                        continue  # <s> is never predicted
                    raw[n][tuple(toks[i : i + n])] += 1
        self.adj: dict[int, Counter] = {}
        for n in range(1, order + 1):
            if n == order:
                self.adj[n] = Counter(raw[n])
                continue
            left = Counter(g[1:] for g in raw[n + 1])
            self.adj[n] = Counter(
                {g: (c if (n > 1 and g[0] == EOS) else left[g]) for g, c in raw[n].items()}
            )
        self.D = {n: discounts(np.array(list(self.adj[n].values()))) for n in self.adj}

    def d(self, n: int, a: float) -> float:
        return 0.0 if a == 0 else self.D[n][min(int(a), 3) - 1]

    def prob(self, word: int, hist: tuple[int, ...]) -> float:
        n = len(hist) + 1
        if n == 1:
            total = sum(self.adj[1].values())
            gamma = sum(self.d(1, a) for a in self.adj[1].values()) / total
            a = self.adj[1][(word,)]
            return max(a - self.d(1, a), 0) / total + gamma / self.V
        lower = self.prob(word, hist[1:])
        rows = {g: a for g, a in self.adj[n].items() if g[:-1] == hist}
        total = sum(rows.values())
        if total == 0:
            return lower
        gamma = sum(self.d(n, a) for a in rows.values()) / total
        a = rows.get(hist + (word,), 0)
        return max(a - self.d(n, a), 0) / total + gamma * lower


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one_for_random_contexts(order: int) -> None:
    rng = np.random.default_rng(1)
    ids, _ = random_stream(rng, 300, 25)
    kn = KneserNey.fit(ids, order=order, vocab_size=27, eos_id=EOS)  # ids 25, 26 never occur
    for _ in range(30):
        history = [int(x) for x in rng.integers(0, 27, size=int(rng.integers(0, 6)))]
        p = kn.distribution(history)
        assert p.shape == (27,)
        assert (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_matches_the_reference_written_from_the_definitions() -> None:
    rng = np.random.default_rng(2)
    ids, sents = random_stream(rng, 120, 12)
    order = 3
    kn = KneserNey.fit(ids, order=order, vocab_size=12, eos_id=EOS)
    ref = ReferenceKN(sents, order, 12)
    test_ids, test_sents = random_stream(rng, 20, 12)
    expected = []
    for s in test_sents:
        toks = [EOS] + s + [EOS]
        for i in range(1, len(toks)):
            hist = tuple(toks[max(0, i - order + 1) : i])
            expected.append(math.log(ref.prob(toks[i], hist)))
    np.testing.assert_allclose(kn.log_probs(test_ids), expected, rtol=1e-10)


def test_stream_scores_equal_the_full_distributions() -> None:
    rng = np.random.default_rng(3)
    ids, _ = random_stream(rng, 200, 15)
    kn = KneserNey.fit(ids, order=4, vocab_size=15, eos_id=EOS)
    test_ids, _ = random_stream(rng, 10, 15)
    scores = kn.log_probs(test_ids)
    for t in range(1, len(test_ids)):
        p = kn.distribution(test_ids[:t])
        assert scores[t - 1] == pytest.approx(math.log(p[test_ids[t]]), rel=1e-12)


def test_state_round_trip() -> None:
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 50, 10)
    kn = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS)
    arrays, header = kn.state()
    again = KneserNey.from_state(arrays, header)
    np.testing.assert_array_equal(again.log_probs(ids), kn.log_probs(ids))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order": 3.0}, "'order' must be an integer; got 3.0"),
        ({"order": True}, "'order' must be an integer; got True"),
        ({"order": 0}, "'order' must be at least 1; got 0"),
        ({"vocab_size": None}, "'vocab_size' must be an integer; got None"),
        ({"eos_id": 10}, "'eos_id' must be below 'vocab_size' \\(10\\); got 10"),
        ({"discounts": [[0.5, 1.0, 1.5]]}, "'discounts' must be a list of 3 triples"),
        (
            {"discounts": [[0.5, 1.0, 1.5]] * 2 + [[0.5, "1"]]},
            r"each entry of 'discounts' must be three numbers; got \[0.5, '1'\]",
        ),
        ({"discounts": None}, "'discounts' must be a list of 3 triples"),
    ],
)
def test_a_bad_header_is_refused_with_what_is_wrong(change: dict, message: str) -> None:
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 20, 10)
    arrays, header = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS).state()
    with pytest.raises(ModelFileError, match="the Kneser-Ney model header is invalid: " + message):
        KneserNey.from_state(arrays, {**header, **change})


def _nan_at_0(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[0] = np.nan
    return a


def _set(a: np.ndarray, i: int, v: float) -> np.ndarray:
    a = a.copy()
    a[i] = v
    return a


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("unigram", _nan_at_0, r"'unigram' holds nan at index 0; each must be in \[0, 1\]"),
        ("unigram", lambda a: _set(a, 2, -0.01), r"'unigram' holds -0.01 at index 2"),
        ("unigram", lambda a: a * 2, r"'unigram' sums to 2, not 1"),
        ("unigram", lambda a: a.astype(np.float32), "'unigram' is float32, not float64"),
        (
            "unigram",
            lambda a: a[:-1],
            "'unigram' holds 9 values where model.json and the tables make 10",
        ),
        ("unigram", lambda a: a.reshape(2, 5), "'unigram' has 2 dimensions, not 1"),
        (
            "order2.numerator",
            _nan_at_0,
            "'order2.numerator' holds nan at index 0; each must be finite",
        ),
        (
            "order3.numerator",
            lambda a: _set(a, 1, -3.0),
            "'order3.numerator' holds -3.0 at index 1",
        ),
        (
            "order3.numerator",
            lambda a: _set(a, 0, np.inf),
            "'order3.numerator' holds inf at index 0",
        ),
        (
            "order2.denominator",
            lambda a: _set(a, 3, -1.0),
            "'order2.denominator' holds -1.0 at index 3",
        ),
        ("order3.gamma", _nan_at_0, "'order3.gamma' holds nan at index 0"),
        (
            "order3.gamma",
            lambda a: a[:-1],
            "'order3.gamma' holds .* values where model.json and the tables make",
        ),
        (
            "order2.numerator",
            lambda a: a[:-1],
            "'order2.numerator' holds .* values where model.json and the tables make",
        ),
        (
            "order2.keys",
            lambda a: a[::-1].copy(),
            "'order2.keys' is not strictly increasing at index 1",
        ),
        ("order2.keys", lambda a: a.astype(np.float64), "'order2.keys' is float64, not int64"),
        (
            "order2.keys",
            lambda a: _set(a, len(a) - 1, 10**6),
            r"'order2.keys' holds keys outside \[0, 100\)",
        ),
        ("order2.keys", lambda a: _set(a, 0, -5), r"'order2.keys' holds keys outside"),
    ],
)
def test_a_damaged_table_is_refused_naming_it(name: str, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 30, 10)
    arrays, header = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS).state()
    arrays = dict(arrays)
    arrays[name] = edit(arrays[name])
    with pytest.raises(ModelFileError, match="the Kneser-Ney table " + message):
        KneserNey.from_state(arrays, header)


@pytest.mark.parametrize(
    ("discounts", "message"),
    [
        ([float("nan"), 1.0, 1.5], "the discount D1 of each order must lie in \\[0, 1\\]; got nan"),
        ([0.5, float("inf"), 1.5], "the discount D2 .* got inf"),
        ([0.5, 1.0, -0.1], "the discount D3 .* got -0.1"),
        ([1.5, 1.0, 1.5], "the discount D1 .* got 1.5"),
    ],
)
def test_a_discount_out_of_range_is_refused(discounts: list[float], message: str) -> None:
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 20, 10)
    arrays, header = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS).state()
    with pytest.raises(ModelFileError, match=message):
        KneserNey.from_state(arrays, {**header, "discounts": [discounts] * 3})


def test_the_ngram_counts_of_the_header_must_be_those_of_the_tables() -> None:
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 20, 10)
    arrays, header = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS).state()
    wrong = [10, 1, 1]
    with pytest.raises(ModelFileError, match=r"'ngrams' is \[10, 1, 1\] but the tables hold"):
        KneserNey.from_state(arrays, {**header, "ngrams": wrong})


def test_a_missing_header_value_or_table_is_named() -> None:
    rng = np.random.default_rng(4)
    ids, _ = random_stream(rng, 20, 10)
    arrays, header = KneserNey.fit(ids, order=3, vocab_size=10, eos_id=EOS).state()
    del header["eos_id"]
    with pytest.raises(ModelFileError, match="it lacks 'eos_id'"):
        KneserNey.from_state(arrays, header)
    with pytest.raises(ModelFileError, match="must be a JSON object; got list"):
        KneserNey.from_state(arrays, [3, 10])
    del arrays["order3.gamma"]
    with pytest.raises(ModelFileError, match="lacks 'order3.gamma'; retrain the model"):
        KneserNey.from_state(arrays, {**header, "eos_id": EOS})


@pytest.mark.slow
def test_ptb_kn5_matches_the_published_perplexity(tmp_path: Path) -> None:
    train = shared_data("ptb/ptb.train.txt.gz")
    valid, test = shared_data("ptb/ptb.valid.txt"), shared_data("ptb/ptb.test.txt")
    config = Path(__file__).resolve().parents[2] / "configs" / "ptb_kn5.toml"
    lm = train_lm(train, valid, test, config=config, out=tmp_path, overrides=["samples=0"])
    assert lm.summary["test"]["tokens"] == 82430  # 78,669 words + 3,761 </s>
    assert lm.summary["test"]["perplexity"] <= 148  # Mikolov (2012): 141.2
    assert load(tmp_path).perplexity(test) == pytest.approx(lm.summary["test"]["perplexity"])
