"""``LanguageModel.evaluate`` (``ffnlp lm eval``) reads, encodes and scores a corpus a chunk at a
time: the same figures as the whole text scored at once, for every kind of model and mixture,
with chunks whose size does not grow with the corpus."""

from __future__ import annotations

import json
import random
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffnlp.cli.main import app
from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.tasks.lm import load, train_lm
from ffnlp.tasks.lm import result as lm_result
from ffnlp.tasks.lm.evaluate import cache_probs, fit_cache_weight, perplexity_of, with_cache
from ffnlp.text.corpus import (
    EOS,
    CorpusConfig,
    CorpusCounts,
    LMBatches,
    encode_corpus,
    stream_ids,
    target_chunks,
)
from ffnlp.text.vocab import Vocab

runner = CliRunner()
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park", "<unk>"]
TINY = [
    "model.embedding_dim=8",
    "model.hidden_sizes=[16]",
    "model.context_size=3",
    "train.epochs=1",
    "train.batch_size=64",
    "train.threads=1",
    "samples=0",
    "eval_batch_size=7",  # batches of 7 windows: many batches, chunks of many batches
]


def _corpus(path: Path, lines: int, seed: int, extra: tuple[str, ...] = ()) -> Path:
    rng = random.Random(seed)
    words = WORDS + list(extra)
    text = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("streamed")
    train = _corpus(root / "train.txt", 300, 0)
    dev = _corpus(root / "dev.txt", 40, 1)
    out = {
        "test": _corpus(root / "test.txt", 230, 2, ("zebra", "okapi")),
        "dev": dev,
        "nn": root / "nn",
        "nn_sentences": root / "nn_sentences",
        "kn": root / "kn",
    }
    train_lm(train, dev, overrides=TINY, out=out["nn"])
    train_lm(train, dev, overrides=[*TINY, "data.cross_sentences=false"], out=out["nn_sentences"])
    train_lm(
        train,
        dev,
        overrides=['kind="kneser_ney"', "kneser_ney.order=3"],
        out=out["kn"],
        interpolate_with=out["nn"],
    )
    out["arpa"] = root / "kn.arpa"
    load(out["kn"], standalone=True).export_arpa(out["arpa"])
    return out


def _whole(lm: lm_result.LanguageModel, path: Path) -> tuple[np.ndarray, dict]:
    """The text scored at once, as evaluate did before it streamed."""
    corpus = lm.encode(path)
    lp = lm.log_probs(corpus)
    return lp, {
        "perplexity": perplexity_of(lp),
        "loss": -float(np.mean(lp)),
        "tokens": corpus.targets,
        "sentences": corpus.sentences,
        "oov_rate": corpus.unknown / max(corpus.words, 1),
    }


def _streamed_log_probs(lm: lm_result.LanguageModel, path: Path) -> np.ndarray:
    history = max(m._history() for m in lm._models())
    counts = CorpusCounts()
    pieces = stream_ids(path, lm.vocab, lm.config.data, counts, size=50)
    with lm._evaluating():
        parts = [
            lm._chunk_log_probs(chunk, history)
            for chunk in target_chunks(pieces, lm.eos_id, history, lm._chunk_size())
        ]
    return np.concatenate(parts)


CASES = {
    "nn": lambda r: load(r["nn"]),
    "nn_sentences": lambda r: load(r["nn_sentences"]),
    "kn": lambda r: load(r["kn"], standalone=True),
    "arpa": lambda r: load(r["arpa"]),
    "kn_with_nn": lambda r: load(r["kn"]),  # its own partner, weight fitted at training
    "nn_with_kn": lambda r: load(r["nn"], interpolate_with=r["kn"], weight=0.3),
    "nn_with_arpa": lambda r: load(r["nn"], interpolate_with=r["arpa"], tune_on=r["dev"]),
    "arpa_with_nn": lambda r: load(r["arpa"], interpolate_with=r["nn"], weight=0.6),
}


@pytest.mark.parametrize("chunk", [lm_result.EVAL_CHUNK, 8, 1])
@pytest.mark.parametrize("case", list(CASES))
def test_the_streamed_figures_are_the_whole_text_s(
    runs: dict[str, Path], case: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lm_result, "EVAL_CHUNK", chunk)  # chunks of one or a few batches
    lm = CASES[case](runs)
    assert (lm.partner is not None) == ("with" in case)
    whole, want = _whole(lm, runs["test"])
    got = lm.evaluate(runs["test"])
    assert got["tokens"] == want["tokens"] == len(whole)
    assert (got["sentences"], got["oov_rate"]) == (want["sentences"], want["oov_rate"])
    assert want["oov_rate"] > 0
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-9, abs=0)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-9, abs=0)
    assert lm.perplexity(runs["test"]) == got["perplexity"]
    # token by token, the same numbers: the n-grams read the same ids, the networks' windows
    # go through them in the same batches
    assert np.array_equal(_streamed_log_probs(lm, runs["test"]), whole)


def test_a_neural_model_s_chunks_are_whole_batches(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"], interpolate_with=runs["kn"], weight=0.5)
    size = lm._chunk_size()
    assert size % 7 == 0 and size >= lm_result.EVAL_CHUNK
    lm.partner.config = lm.partner.config.__class__(eval_batch_size=5)  # an n-gram: no batches
    assert lm._chunk_size() == size


def test_evaluate_leaves_a_training_model_in_training_mode(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    assert lm.network is not None
    lm.network.train()
    lm.evaluate(runs["test"])
    assert lm.network.training


def _vocab() -> Vocab:
    return Vocab.from_counts({w: 5 for w in WORDS if w != "<unk>"}, specials=(EOS, "<unk>"))


def test_stream_ids_is_encode_corpus_piece_by_piece(tmp_path: Path) -> None:
    path = _corpus(tmp_path / "c.txt", 500, 3, ("zebra",))
    vocab, config = _vocab(), CorpusConfig()
    whole = encode_corpus(path, vocab, config)
    counts = CorpusCounts()
    pieces = list(stream_ids(path, vocab, config, counts, size=64))
    assert len(pieces) > 20
    assert all(len(p) < 64 + 11 for p in pieces)  # a piece is cut after the sentence reaching 64
    assert all(int(p[-1]) == vocab.stoi(EOS) for p in pieces)  # whole sentences
    assert np.concatenate(pieces).tolist() == whole.ids.tolist()
    assert (counts.sentences, counts.words, counts.unknown, counts.targets) == (
        whole.sentences,
        whole.words,
        whole.unknown,
        whole.targets,
    )


def test_an_empty_corpus_is_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="the corpus is empty") as whole:
        encode_corpus(path, _vocab(), CorpusConfig())
    with pytest.raises(DataError) as streamed:
        list(stream_ids(path, _vocab(), CorpusConfig(), CorpusCounts()))
    assert str(streamed.value) == str(whole.value)


@pytest.mark.parametrize("history", [0, 1, 3, 7])
def test_chunks_of_a_large_stream_are_bounded_and_give_every_window(history: int) -> None:
    rng = np.random.default_rng(history)
    eos = 0
    ids = rng.integers(0, 50, 300_007).astype(np.int32)
    ids[0] = eos
    cuts = np.sort(rng.choice(np.arange(1, len(ids)), 40, replace=False))
    pieces = np.split(ids, cuts)  # pieces of any size, as the reader gives them
    size = 4096
    chunks = list(target_chunks(iter(pieces), eos, history, size))
    assert all(len(c) <= history + size for c in chunks)  # however long the stream
    assert [len(c) - history for c in chunks[:-1]] == [size] * (len(chunks) - 1)
    assert np.concatenate([c[history:] for c in chunks]).tolist() == ids[1:].tolist()
    if history:  # each chunk's history is the ids before its first target, </s> before the start
        padded = np.concatenate([np.full(history - 1, eos, np.int32), ids])
        for k, chunk in enumerate(chunks):
            first = 1 + k * size  # the stream position of the chunk's first target
            assert chunk[:history].tolist() == padded[first - 1 : first - 1 + history].tolist()
    # the windows a neural model reads from the chunks are LMBatches' (C = history)
    if history:
        source = LMBatches(torch_ids(ids), history, eos)
        want = next(iter(source.batches(len(ids), None)))
        got = np.concatenate(
            [np.lib.stride_tricks.sliding_window_view(c, history + 1) for c in chunks]
        )
        assert got[:, :history].tolist() == want["context"].tolist()
        assert got[:, history].tolist() == want["target"].tolist()


def torch_ids(ids: np.ndarray):
    import torch

    return torch.from_numpy(ids)


def test_a_stream_must_start_with_eos() -> None:
    with pytest.raises(ValueError, match="must start with </s>"):
        list(target_chunks(iter([np.array([3, 0, 1], np.int32)]), 0, 2, 10))


def test_evaluate_s_memory_does_not_grow_with_the_corpus(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """A Kneser-Ney model scores in NumPy, whose allocations tracemalloc sees: the peak while
    scoring 8 times the text stays that of one chunk (it was the whole text's before)."""
    lm = load(runs["kn"], standalone=True)
    small = _corpus(tmp_path / "small.txt", 12_000, 5)
    big = tmp_path / "big.txt"
    big.write_text(small.read_text(encoding="utf-8") * 8, encoding="utf-8")
    peaks = []
    for path in (small, big):
        tracemalloc.start()
        figures = lm.evaluate(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert figures["tokens"] > 60_000
    assert peaks[1] < 1.3 * peaks[0], peaks


def test_the_command_prints_the_streamed_figures(runs: dict[str, Path]) -> None:
    args = ["lm", "eval", str(runs["nn"]), "--data", str(runs["test"]), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    want = _whole(load(runs["nn"]), runs["test"])[1]
    assert got["tokens"] == want["tokens"] and got["sentences"] == want["sentences"]
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-9, abs=0)


# -- the unigram cache ---------------------------------------------------------------------------


def test_cache_probs_are_the_share_of_the_words_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=120)
    for size, first, real_from in ((1, 1, 0), (5, 5, 0), (5, 9, 7), (30, 40, 40), (7, 7, 7)):
        got = cache_probs(ids, first, size, real_from)
        want = []
        for t in range(first, len(ids)):
            before = ids[max(real_from, t - size) : t]
            want.append(np.mean(before == ids[t]) if len(before) else np.nan)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        cache_probs(ids, 3, 5)  # fewer than size ids of history
    # decaying counts, and words left out: neither counted nor predicted
    skipped = np.zeros(6, dtype=bool)
    skipped[[0, 3]] = True
    for size, first, real_from, decay in ((5, 5, 0, 0.5), (30, 40, 12, 0.9), (8, 8, 8, 1.0)):
        got = cache_probs(ids, first, size, real_from, decay, skipped)
        want = []
        for t in range(first, len(ids)):
            num = den = 0.0
            for k in range(1, size + 1):  # the word k back
                if t - k >= real_from and not skipped[ids[t - k]]:
                    den += decay ** (k - 1)
                    num += decay ** (k - 1) * (ids[t - k] == ids[t])
            want.append(num / den if den else np.nan)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert np.all(got[skipped[ids[first:]] & ~np.isnan(got)] == 0)


def test_the_cache_mixes_in_and_its_share_is_fitted(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    corpus = lm.encode(runs["test"])
    plain = lm.log_probs(corpus)
    cache = cache_probs(np.concatenate([np.full(20, -1), corpus.ids[1:].numpy()]), 20, 20, 20)
    lm.set_cache(20, 0.25)
    mixed = lm.log_probs(corpus)
    has = ~np.isnan(cache)
    np.testing.assert_allclose(np.exp(mixed[has]), 0.75 * np.exp(plain[has]) + 0.25 * cache[has])
    assert mixed[0] == plain[0] and np.isnan(cache[0])  # nothing before the first word
    share = lm.fit_cache(corpus)
    assert 0 < share < 1
    best = perplexity_of(lm.log_probs(corpus))
    for other in (share / 2, min(share * 2, 0.9), 0.0):  # EM's share beats its neighbours
        lm.set_cache(20, other)
        assert perplexity_of(lm.log_probs(corpus)) >= best - 1e-9


def _decaying(run: Path) -> lm_result.LanguageModel:
    lm = load(run)
    lm.set_cache(25, 0.2, decay=0.9, skip=3)
    return lm


def _ngram_cache(run: Path) -> lm_result.LanguageModel:
    lm = load(run)
    lm.set_cache(25, (0.1, 0.15, 0.05), decay=0.95, skip=2, order=3)
    return lm


CACHED = {
    "nn": lambda r: load(r["nn"], cache=25, cache_weight=0.2),
    "nn_trigram_cache": lambda r: _ngram_cache(r["nn"]),
    "nn_decay_skip": lambda r: _decaying(r["nn"]),
    "nn_sentences": lambda r: load(r["nn_sentences"], cache=3, cache_weight=0.5),
    "kn": lambda r: load(r["kn"], standalone=True, cache=40, tune_on=r["dev"]),
    "nn_with_kn": lambda r: load(r["nn"], interpolate_with=r["kn"], tune_on=r["dev"], cache=25),
}


@pytest.mark.parametrize("chunk", [lm_result.EVAL_CHUNK, 8, 1])
@pytest.mark.parametrize("case", list(CACHED))
def test_the_streamed_cache_is_the_whole_text_s(
    runs: dict[str, Path], case: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lm_result, "EVAL_CHUNK", chunk)  # the cache reaches across chunks
    lm = CACHED[case](runs)
    assert lm.cache_size > 0 and 0 < lm.cache_weight < 1
    whole, want = _whole(lm, runs["test"])
    got = lm.evaluate(runs["test"])
    assert got["perplexity"] == pytest.approx(want["perplexity"], rel=1e-9, abs=0)
    assert {k: got["cache"][k] for k in ("size", "weight")} == {
        "size": lm.cache_size,
        "weight": lm.cache_weight,
    }
    lm.set_cache(0)
    assert lm.evaluate(runs["test"])["perplexity"] != got["perplexity"]


def test_the_next_word_distribution_holds_the_cache(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    history = [lm.eos_id, *lm.vocab.encode(["the", "cat", "sat", "on", "the", "mat"])]
    plain = lm.next_distribution(history)
    lm.set_cache(4, 0.3)
    p = lm.next_distribution(history)
    recent = np.bincount(history[-4:], minlength=len(p)) / 4  # sat on the mat
    np.testing.assert_allclose(p, 0.7 * plain + 0.3 * recent)
    assert p.sum() == pytest.approx(1.0)
    assert lm.generate("the cat", max_tokens=5, seed=1).tokens  # sampling reads it too
    # decaying, with </s> and the most frequent word left out
    lm.set_cache(4, 0.3, decay=0.5, skip=1)
    top = int(np.argmax(lm.vocab.counts))
    weights = np.array([0.125, 0.25, 0.5, 1.0])  # sat on the mat: the oldest first
    weights[[lm.vocab.stoi(w) in (top, lm.eos_id) for w in ["sat", "on", "the", "mat"]]] = 0
    cache = np.bincount(history[-4:], weights, minlength=len(plain)) / weights.sum()
    np.testing.assert_allclose(lm.next_distribution(history), 0.7 * plain + 0.3 * cache)


def test_a_cache_in_the_config_is_fitted_on_dev_and_read_back(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    train = _corpus(tmp_path / "train.txt", 300, 0)
    out = tmp_path / "cached"
    lm = train_lm(train, runs["dev"], runs["test"], overrides=[*TINY, "cache.size=30"], out=out)
    summary = json.loads((out / "summary.json").read_text())
    cache = summary["cache"]
    assert cache["size"] == 30 and cache["weight_fitted_on"] == "dev" and 0 < cache["weight"] < 1
    # the summary's dev and test are the network's alone; the cache's fitted share helps on dev
    assert cache["dev"]["perplexity"] <= summary["dev"]["perplexity"]
    again = load(out)
    assert (again.cache_size, again.cache_weight) == (30, cache["weight"]) == (30, lm.cache_weight)
    assert again.perplexity(runs["test"]) == pytest.approx(cache["test"]["perplexity"], rel=1e-9)
    off = runner.invoke(
        app, ["lm", "eval", str(out), "--data", str(runs["test"]), "--cache", "0", "--json"]
    )
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["perplexity"] == pytest.approx(
        summary["test"]["perplexity"], rel=1e-9
    )
    shown = runner.invoke(app, ["lm", "eval", str(out), "--data", str(runs["test"])])
    assert f"with a cache of 30 words (share {cache['weight']:.3f})" in " ".join(
        shown.output.split()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache", "-1"], "'cache' parameter of load must be an int >= 0"),
        (
            ["--cache-weight", "1"],
            "'cache_weight' parameter of load must be a finite number >= 0 and <= 0.999",
        ),
        (
            ["--cache-weight", "nan"],
            "'cache_weight' parameter of load must be a finite number >= 0 and <= 0.999",
        ),
        (["--cache-order", "0"], "'cache_order' parameter of load must be an int >= 1"),
        (["--cache-order", "6"], "'cache_order' parameter of load must be an int >= 1 and <= 5"),
        (["--cache-decay", "0"], "'cache_decay' parameter of load must be a finite number > 0"),
        (["--cache-decay", "nan"], "'cache_decay' parameter of load must be a finite number > 0"),
        (["--cache-decay", "1.5"], "'cache_decay' parameter of load must be a finite number > 0"),
        (["--cache-skip", "-1"], "'cache_skip' parameter of load must be an int >= 0"),
    ],
)
def test_bad_cache_options_are_refused_naming_them(
    runs: dict[str, Path], args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["lm", "eval", str(runs["nn"]), "--data", str(runs["test"]), *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


# -- the n-gram caches (cache.order) ------------------------------------------------------------


def _direct_ngram_cache(
    ids: np.ndarray, first: int, size: int, real_from: int, decay: float, order: int
) -> list[float]:
    """Among the `size` positions before each target, those whose order - 1 words before them
    are the target's (all real words): the decayed share holding the target."""
    out = []
    for t in range(first, len(ids)):
        context = [ids[t - i] for i in range(1, order)]
        num = den = 0.0
        if all(t - i >= real_from for i in range(1, order)):
            for k in range(1, size + 1):  # the position k back
                j = t - k
                if j < real_from or any(j - i < real_from for i in range(1, order)):
                    continue
                if [ids[j - i] for i in range(1, order)] == context:
                    den += decay ** (k - 1)
                    num += decay ** (k - 1) * (ids[j] == ids[t])
        out.append(num / den if den else np.nan)
    return out


@pytest.mark.parametrize("order", [2, 3, 4])
def test_ngram_cache_probs_are_a_direct_count(order: int) -> None:
    rng = np.random.default_rng(order)
    ids = rng.integers(0, 3, size=150)  # three words: contexts recur
    skipped = np.array([True, False, False])  # the unigram cache's; n-gram caches keep it
    seen = []
    for size, first, real_from, decay in ((6, 9, 0, 1.0), (20, 40, 33, 0.9), (9, 12, 12, 0.5)):
        got = cache_probs(ids, first, size, real_from, decay, skipped, order=order)
        want = _direct_ngram_cache(ids, first, size, real_from, decay, order)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        seen.extend(got)
    assert np.isnan(seen).sum() >= 3 and (np.asarray(seen) > 0).sum() >= 20
    with pytest.raises(ValueError, match="size \\+ order - 1 ids of history"):
        cache_probs(ids, 6, 6, order=order)  # the context of the oldest position is missing


def test_caches_with_nothing_to_say_give_their_share_back() -> None:
    lp = np.log(np.array([0.2, 0.5, 0.1, 0.3]))
    caches = np.array([[0.5, np.nan, 0.0, np.nan], [1.0, np.nan, np.nan, 0.25]])
    got = np.exp(with_cache(lp, caches, (0.1, 0.3)))
    want = [
        (0.6 * 0.2 + 0.1 * 0.5 + 0.3 * 1.0) / 1.0,
        0.5,  # no cache: the model's own
        (0.6 * 0.1 + 0.1 * 0.0) / 0.7,
        (0.6 * 0.3 + 0.3 * 0.25) / 0.9,
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # one order: the unigram cache's mixture as it was
    np.testing.assert_allclose(
        np.exp(with_cache(lp, caches[0], 0.1)), [0.9 * 0.2 + 0.1 * 0.5, 0.5, 0.9 * 0.1, 0.3]
    )


def test_the_ngram_caches_shares_are_fitted_together(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    corpus = lm.encode(runs["test"])
    lm.set_cache(30, decay=0.95, order=3)
    shares = lm.fit_cache(corpus)
    weights = lm.cache_weights
    assert (
        len(weights) == 3 and all(w > 0 for w in weights) and shares == pytest.approx(sum(weights))
    )
    best = perplexity_of(lm.log_probs(corpus))
    plain = perplexity_of(lm.log_probs(corpus, cache=False))
    lm.set_cache(30, weights[0] + weights[1] + weights[2], order=1)
    unigram_only = perplexity_of(lm.log_probs(corpus))
    assert best < unigram_only < plain  # (this corpus' words follow one another at random)
    for k in range(3):  # the fitted shares beat their neighbours, one order at a time
        for factor in (0.5, 1.5):
            moved = list(weights)
            moved[k] *= factor
            lm.set_cache(30, moved, order=3)
            assert perplexity_of(lm.log_probs(corpus)) >= best - 1e-9
    raw = lm.cache_of(corpus)
    assert fit_cache_weight(lm.log_probs(corpus, cache=False), raw) == pytest.approx(weights)


def test_the_next_word_distribution_holds_the_ngram_caches(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    lm.set_cache(12, (0.1, 0.2, 0.15), decay=0.8, skip=2, order=3)
    corpus = lm.encode(runs["test"])
    ids = corpus.ids.numpy()
    lp = lm.log_probs(corpus)
    for t in (1, 2, 3, 4, 7, 40, 200):  # a target at position t reads ids[:t]
        p = lm.next_distribution(list(ids[:t]))
        assert p.sum() == pytest.approx(1.0)
        assert np.log(p[ids[t]]) == pytest.approx(lp[t - 1], rel=1e-9)


def test_bad_ngram_cache_settings_are_refused_naming_them(runs: dict[str, Path]) -> None:
    lm = load(runs["nn"])
    with pytest.raises(ConfigError, match="one share per cache order \\(3\\); got 2"):
        lm.set_cache(10, (0.1, 0.2), order=3)
    with pytest.raises(ConfigError, match="sum to 1.2; at most 0.999"):
        lm.set_cache(10, (0.4, 0.8), order=2)
    with pytest.raises(ConfigError, match="'order' parameter of LanguageModel.set_cache"):
        lm.set_cache(10, order=9)
    lm.set_cache(10, 0.3, order=3)
    assert lm.cache_weights == pytest.approx((0.1, 0.1, 0.1))


def test_ngram_caches_in_the_config_are_fitted_on_dev_and_read_back(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    train = _corpus(tmp_path / "train.txt", 300, 0)
    out = tmp_path / "cached"
    overrides = [*TINY, "cache.size=30", "cache.order=2"]
    lm = train_lm(train, runs["dev"], runs["test"], overrides=overrides, out=out)
    cache = json.loads((out / "summary.json").read_text())["cache"]
    assert cache["order"] == 2 and len(cache["weights"]) == 2
    assert cache["weight"] == pytest.approx(sum(cache["weights"]))
    again = load(out)
    assert again.cache_weights == tuple(cache["weights"]) == lm.cache_weights
    assert again.perplexity(runs["test"]) == pytest.approx(cache["test"]["perplexity"], rel=1e-9)
    got = runner.invoke(app, ["lm", "eval", str(out), "--data", str(runs["test"]), "--json"])
    assert got.exit_code == 0, got.output
    shown = json.loads(got.stdout)["cache"]
    assert shown["order"] == 2 and shown["weights"] == cache["weights"]
    said = runner.invoke(app, ["lm", "eval", str(out), "--data", str(runs["test"])])
    w1, w2 = cache["weights"]
    assert f"(share {w1 + w2:.3f}: orders 1-2 {w1:.3f} / {w2:.3f})" in " ".join(said.output.split())
    # a summary whose shares do not fit the order is refused, naming the file
    summary = json.loads((out / "summary.json").read_text())
    summary["cache"]["weights"] = [0.1, 0.2, 0.3]
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ModelFileError, match="summary.json: cache.weights must be 2 number"):
        load(out)


def test_lm_eval_takes_the_cache_order(runs: dict[str, Path]) -> None:
    args = ["lm", "eval", str(runs["nn"]), "--data", str(runs["test"]), "--cache", "25"]
    args += ["--cache-order", "3", "--dev", str(runs["dev"]), "--json"]
    got = runner.invoke(app, args)
    assert got.exit_code == 0, got.output
    figures = json.loads(got.stdout)
    want = load(runs["nn"], tune_on=runs["dev"], cache=25, cache_order=3)
    assert figures["cache"]["order"] == 3 and figures["cache"]["weights"] == list(
        want.cache_weights
    )
    assert figures["perplexity"] == pytest.approx(want.perplexity(runs["test"]), rel=1e-9)
    unigram = load(runs["nn"], tune_on=runs["dev"], cache=25)
    assert figures["perplexity"] != pytest.approx(unigram.perplexity(runs["test"]), rel=1e-6)


def test_lm_eval_takes_the_cache_decay_and_skip(runs: dict[str, Path]) -> None:
    args = ["lm", "eval", str(runs["nn"]), "--data", str(runs["test"]), "--cache", "25"]
    args += ["--cache-decay", "0.9", "--cache-skip", "3", "--dev", str(runs["dev"]), "--json"]
    got = runner.invoke(app, args)
    assert got.exit_code == 0, got.output
    figures = json.loads(got.stdout)
    assert figures["cache"]["decay"] == 0.9 and figures["cache"]["skip"] == 3
    want = load(runs["nn"], tune_on=runs["dev"], cache=25, cache_decay=0.9, cache_skip=3)
    assert (want.cache_decay, want.cache_skip) == (0.9, 3)
    assert figures["perplexity"] == pytest.approx(want.perplexity(runs["test"]), rel=1e-9)
    for changed in ({"cache_decay": 0.9}, {"cache_skip": 3}):  # each one moves the figure
        other = load(runs["nn"], tune_on=runs["dev"], cache=25, **changed)  # type: ignore[arg-type]
        assert figures["perplexity"] != pytest.approx(other.perplexity(runs["test"]), rel=1e-6)


@pytest.mark.parametrize("model", ["kn", "arpa"])
def test_n_gram_models_take_the_n_gram_caches_too(runs: dict[str, Path], model: str) -> None:
    args = ["lm", "eval", str(runs[model]), "--data", str(runs["test"]), "--cache", "25"]
    plain = runner.invoke(app, [*args, "--cache", "0", "--json"])
    got = runner.invoke(app, [*args, "--cache-order", "2", "--dev", str(runs["dev"]), "--json"])
    assert plain.exit_code == 0 and got.exit_code == 0, got.output
    figures = json.loads(got.stdout)
    assert figures["cache"]["order"] == 2 and all(w > 0 for w in figures["cache"]["weights"])
    assert figures["perplexity"] < json.loads(plain.stdout)["perplexity"]


def test_load_scores_the_tuning_text_once_for_the_mixture_and_the_cache(
    runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[Path | None] = []
    own = lm_result.LanguageModel.own_log_probs

    def counting(self: lm_result.LanguageModel, corpus: object) -> np.ndarray:
        scored.append(self.run_dir)
        return own(self, corpus)  # type: ignore[arg-type]

    monkeypatch.setattr(lm_result.LanguageModel, "own_log_probs", counting)
    lm = load(runs["nn"], interpolate_with=runs["kn"], tune_on=runs["dev"], cache=25, cache_order=2)
    assert sorted(map(str, scored)) == sorted([str(runs["nn"]), str(runs["kn"])])  # once each
    monkeypatch.setattr(lm_result.LanguageModel, "own_log_probs", own)
    again = load(runs["nn"], interpolate_with=runs["kn"], tune_on=runs["dev"])
    again.set_cache(25, order=2)
    again.fit_cache(again.encode(runs["dev"]))  # the mixture scored anew: the same shares
    assert again.weight == lm.weight and again.cache_weights == pytest.approx(lm.cache_weights)


def test_a_mixed_run_fits_its_cache_over_the_mixture_and_loads_it(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    train = _corpus(tmp_path / "train.txt", 300, 0)
    out = tmp_path / "mixed"
    overrides = [*TINY, "cache.size=30", "cache.order=2"]
    lm = train_lm(
        train, runs["dev"], runs["test"], overrides=overrides, out=out, interpolate_with=runs["kn"]
    )
    summary = json.loads((out / "summary.json").read_text())
    alone, mixed = summary["cache"], summary["interpolated"]["cache"]
    assert mixed == json.loads((out / "interpolation.json").read_text())["cache"]
    assert mixed["weights"] != alone["weights"]  # fitted again, over the mixture
    assert mixed["dev"]["perplexity"] < summary["interpolated"]["dev"]["perplexity"]
    assert lm.partner is not None and lm.cache_weights == tuple(mixed["weights"])
    again = load(out)  # the saved mixture, with the cache's shares fitted over it
    assert again.partner is not None and again.cache_weights == tuple(mixed["weights"])
    assert again.perplexity(runs["test"]) == pytest.approx(mixed["test"]["perplexity"], rel=1e-9)
    alone_run = load(out, standalone=True)  # the network alone keeps the shares fitted on it
    assert alone_run.cache_weights == tuple(alone["weights"])
    assert alone_run.perplexity(runs["test"]) == pytest.approx(
        alone["test"]["perplexity"], rel=1e-9
    )


def test_lm_train_prints_the_cache_s_figures(runs: dict[str, Path], tmp_path: Path) -> None:
    train = _corpus(tmp_path / "train.txt", 300, 0)
    out = tmp_path / "printed"
    args = ["lm", "train", "--train", str(train), "--dev", str(runs["dev"]), "--test"]
    args += [str(runs["test"]), "--interpolate-with", str(runs["kn"]), "--out", str(out)]
    for item in [*TINY, "cache.size=30", "cache.order=2"]:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    lam = summary["interpolated"]["weight"]
    rows = {
        "test (with the cache)": summary["cache"]["test"]["perplexity"],
        f"test (mixed, λ={lam:.3f})": summary["interpolated"]["test"]["perplexity"],
        f"test (mixed, λ={lam:.3f}, with the cache)": summary["interpolated"]["cache"]["test"][
            "perplexity"
        ],
    }
    for name, value in rows.items():
        row = rf"{re.escape(name)}\s*│\s*{value:.2f}\s*│"
        assert re.search(row, result.output), (name, result.output)
