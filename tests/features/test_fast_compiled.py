"""The compiled loops of predict's fast path against the NumPy code they stand in for: the same
rows (ids, offsets and weights, bit for bit) from the texts' bytes and from the tokens, the same
bag sums, on hostile synthetic texts (Unicode, empty texts, unknown words) and on SST-2."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ffnlp import jit
from ffnlp.features import fast_compiled
from ffnlp.features.bag import BagOfNgrams
from ffnlp.features.fast import IdRows, NgramRows, split_chunk
from ffnlp.models import numpy_forward
from ffnlp.tasks.classify.config import FeaturesConfig
from ffnlp.tasks.classify.data import IdsFeaturizer
from ffnlp.text.ngrams import token_hash
from ffnlp.text.tokenize import Tokenizer
from tests.conftest import shared_data
from tests.features.test_fast import HOSTILE, _texts

pytestmark = pytest.mark.skipif(
    not jit.enabled(), reason="compiled kernels are off here (FFNLP_JIT=0 or no numba)"
)

TEXTS = HOSTILE + [
    "unseen words only",
    "a good a good film",
    "A GOOD FILM",  # lowercased by one tokenizer
    "caf\u00e9\x1cfilm the\x1dgood",  # \x1c-\x1f inside a non-ASCII text: not a split there
    "film\x1cthe good\x1ffilm",  # ...and a split in an ASCII one
    "\u00e9t\u00e9 film \u00e9t\u00e9",
    "\U0001f600 good \U0001f600film",
]
CHUNKS = [1, 2, 7, 64]  # texts per call: a server's micro-batches, and the whole list


def _chunks(texts: list[str]) -> list[list[str]]:
    out = [texts, [], [""], ["", ""]]
    for size in CHUNKS:
        out += [texts[i : i + size] for i in range(0, len(texts), size)]
    return out


def _same(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w)


def _check_rows(make: Callable[[dict], NgramRows | IdRows], state: dict, texts: list[str]) -> None:
    """Each chunk of ``texts``: the rows of the NumPy code; the compiled loops on the same
    tokens; and from the texts' bytes (rows_of_texts), for both whitespace tokenizers."""
    for tokenizer in (Tokenizer("whitespace"), Tokenizer("whitespace", lowercase=True)):
        reference, compiled = make(state), make(state)
        compiled.compiled = True
        for chunk in _chunks(texts):
            want = reference.rows(*split_chunk(tokenizer, chunk))
            _same(compiled.rows(*split_chunk(tokenizer, chunk)), want)
            from_bytes = compiled.rows_of_texts(tokenizer, chunk)
            assert from_bytes is not None
            _same(from_bytes, want)
            _check_sums(compiled, tokenizer, chunk, want)
        assert reference.rows_of_texts(tokenizer, texts) is None  # not switched on
        assert reference.bag_sums_of_texts(tokenizer, texts, np.zeros((1, 1))) is None


def _check_sums(
    compiled: NgramRows | IdRows, tokenizer: Tokenizer, chunk: list[str], want: tuple
) -> None:
    """The fused kernel (texts to the sums of their rows in one call) gives what the NumPy
    bag sum (not compiled) gives on the reference rows ``want``, bit for bit: weighted sums
    for n-grams, sums and means for id bags."""
    if isinstance(compiled, NgramRows):
        width = max(compiled.n_features, 1)
        modes = ["sum"]
    else:
        width = compiled.n_words + compiled.buckets
        modes = ["sum", "mean"]
    table = np.random.default_rng(len(chunk)).standard_normal((width, 3)).astype(np.float32)
    for mode in modes:
        if isinstance(compiled, NgramRows):
            got = compiled.bag_sums_of_texts(tokenizer, chunk, table)
        else:
            got = compiled.bag_sums_of_texts(tokenizer, chunk, table, mode == "mean")
        expected = numpy_forward.bag_sum(table, *want, mode=mode)
        assert got is not None and got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)


SETTINGS = [
    {"ngram_range": (1, 2), "weighting": "tfidf", "sublinear_tf": True},
    {"ngram_range": (1, 1), "weighting": "count"},
    {"ngram_range": (1, 3), "weighting": "binary", "norm": "l2"},
    {"ngram_range": (2, 3), "weighting": "tfidf"},
    {"ngram_range": (1, 2), "weighting": "count", "sublinear_tf": True, "norm": "l2"},
    {"ngram_range": (1, 2), "weighting": "nbsvm"},
    {"ngram_range": (1, 3), "weighting": "nbsvm", "norm": None},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_ngram_rows_of_the_compiled_loops_are_the_numpy_ones(settings: dict) -> None:
    tokenizer = Tokenizer("whitespace")
    train = TEXTS + ["a good film with tabs", "the film the film", "\x00 a good", "\u00e9t\u00e9"]
    targets = np.arange(len(train)) % 2  # two classes, for nbsvm's log-count ratios
    bag = BagOfNgrams(**settings).fit(tokenizer.tokenize_all(train), targets)
    _check_rows(NgramRows, bag.to_dict(), TEXTS)


def _ids_state(max_n: int, texts: list[str], pruned: list[int] | None = None) -> dict:
    tokenizer = Tokenizer("whitespace")
    featurizer = IdsFeaturizer(FeaturesConfig(kind="ids", ngram_range=[1, max_n], buckets=50))
    train = texts + ["a good film", "\x00 word"]
    featurizer.fit(tokenizer.tokenize_all(train), train)
    if pruned is not None:
        featurizer.bucket_rows = pruned
    state: dict = featurizer.to_dict()
    return state


@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_id_bags_of_the_compiled_loops_are_the_numpy_ones(max_n: int) -> None:
    state = _ids_state(max_n, TEXTS)
    _check_rows(lambda s: IdRows(s, max_n=max_n), state, TEXTS)


def test_id_bags_of_a_pruned_run_are_the_numpy_ones() -> None:
    state = _ids_state(2, TEXTS, pruned=[1, 4, 9, 10, 33, 49])
    _check_rows(lambda s: IdRows(s, max_n=2), state, TEXTS)


def test_texts_the_byte_path_cannot_read_go_the_token_way() -> None:
    """The regular-expression tokenizer, and a text that is not valid Unicode (a lone
    surrogate cannot be encoded): rows_of_texts says None, and rows() still answers."""
    state = _ids_state(2, TEXTS)
    rows = IdRows(state, max_n=1)  # words only: a surrogate's hash is never asked for
    rows.compiled = True
    assert rows.rows_of_texts(Tokenizer("regex"), ["a good film"]) is None
    assert rows.rows_of_texts(Tokenizer(), ["a good \ud800 film"]) is None
    table = np.ones((rows.n_words + rows.buckets, 2), dtype=np.float32)
    assert rows.bag_sums_of_texts(Tokenizer("regex"), ["a good film"], table) is None
    assert rows.bag_sums_of_texts(Tokenizer(), ["a good \ud800 film"], table) is None
    reference = IdRows(state, max_n=1)
    chunk = ["a good \ud800 film", "good"]
    _same(
        rows.rows(*split_chunk(Tokenizer(), chunk)),
        reference.rows(*split_chunk(Tokenizer(), chunk)),
    )


def test_the_compiled_token_hash_is_fasttext_s() -> None:
    tokens = ["a", "film", "caf\u00e9", "\u00e9t\u00e9", "\U0001f600", "\x00", "x" * 300]
    encoded = [t.encode("utf-8") for t in tokens]
    starts = np.concatenate(([0], np.cumsum([len(e) for e in encoded]))).astype(np.int64)
    pool = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    kernel = fast_compiled.hash_tokens.compiled()
    assert kernel is not None
    assert kernel(pool, starts).tolist() == [token_hash(t) for t in tokens]


@pytest.mark.parametrize("width", [1, 16, 64])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_the_compiled_bag_sum_is_bag_sum_s(width: int, mode: str) -> None:
    rng = np.random.default_rng(width)
    table = rng.standard_normal((300, width)).astype(np.float32)
    for texts in (1, 3, 40):
        lengths = rng.integers(0, 30, texts)
        lengths[texts // 2] = 0  # an empty bag
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        ids = rng.integers(0, 300, int(offsets[-1]))
        weights = rng.random(len(ids)).astype(np.float32) if mode == "sum" else None
        want = numpy_forward.bag_sum(table, ids, offsets, weights, mode=mode)
        for sparse_from in (0, numpy_forward.SPARSE_PRODUCT_FROM):
            assert np.array_equal(
                numpy_forward.bag_sum(table, ids, offsets, weights, mode=mode, sparse_from=0),
                want,
            )
            got = numpy_forward.bag_sum(
                table, ids, offsets, weights, mode=mode, sparse_from=sparse_from, compiled=True
            )
            assert got.dtype == want.dtype and np.array_equal(got, want)


# -- real data --------------------------------------------------------------------------------


def test_rows_of_sst2_are_the_numpy_ones() -> None:
    """SST-2 test in the chunk sizes a server sees, with the featurisers of the SST-2 presets
    fitted on SST-2 train (words and bigrams, tf-idf; word ids and hashed bigrams); and the
    sums of their rows by the fused kernels."""
    tokenizer = Tokenizer("whitespace")
    train = _texts("sst2/stsa.binary.train")
    test = _texts("sst2/stsa.binary.test")
    shared_data("sst2/stsa.binary.test")
    bag = BagOfNgrams((1, 2), "tfidf", sublinear_tf=True).fit(tokenizer.tokenize_all(train))
    ids = IdsFeaturizer(FeaturesConfig(kind="ids", ngram_range=[1, 2], buckets=200_000))
    ids.fit(tokenizer.tokenize_all(train), train)
    for make, state in (
        (NgramRows, bag.to_dict()),
        (lambda s: IdRows(s, max_n=2), ids.to_dict()),
    ):
        reference, compiled = make(state), make(state)
        compiled.compiled = True
        for size in (1, 30, 64, 2048):
            for start in range(0, len(test), size if size > 64 else 7 * size):
                chunk = test[start : start + size]
                want = reference.rows(*split_chunk(tokenizer, chunk))
                _same(compiled.rows_of_texts(tokenizer, chunk), want)
                _check_sums(compiled, tokenizer, chunk, want)


def test_token_records_hold_every_known_token_once() -> None:
    """TokenTable.records (the fused kernels' packed table): each known token in one slot with
    its bytes' place and length, its value and ``extra[value]``; the other slots empty."""
    from ffnlp.features.fast import TokenTable

    tokens = {f"w{i}": i for i in range(300)} | {"caf\u00e9": 300, "\u00e9t\u00e9": 301, "a": 302}
    extra = np.arange(303, dtype=np.int64) * 7 - 5
    table = TokenTable(tokens)
    records = table.records(extra)
    held = records[records[:, 0] >= 0]
    assert len(records) == len(table.slots) and len(held) == len(tokens)
    assert (records[records[:, 0] < 0, 1:] == 0).all()
    pool = table.pool.tobytes()
    got = {pool[s : s + n].decode("utf-8"): (v, e) for s, n, v, e in held.tolist()}
    assert got == {t: (v, int(extra[v])) for t, v in tokens.items()}
    assert (table.records()[:, 3] == 0).all()  # no extra: zeros
