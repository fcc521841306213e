"""The chunk featurisers of predict's NumPy path against the reference featurisers: the same
tokens, the same feature ids, the same weights, on hostile synthetic texts and on real data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ffnlp.features import ngram_file
from ffnlp.features.bag import BagOfNgrams
from ffnlp.features.fast import (
    _UNICODE_SPACE_CHARS,
    SEPARATOR,
    IdRows,
    KeyIndex,
    NgramRows,
    split_chunk,
    tokenize_chunk,
)
from ffnlp.models.pooled import encode_bags
from ffnlp.tasks.classify.config import FeaturesConfig
from ffnlp.tasks.classify.data import IdsFeaturizer
from ffnlp.text.readers import read_lines
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import Vocab
from tests.conftest import shared_data

TOKENIZERS = [
    Tokenizer("whitespace"),
    Tokenizer("whitespace", lowercase=True),
    Tokenizer("regex"),
    Tokenizer("regex", lowercase=True),
]

HOSTILE = [
    "a good film",
    "",
    "   ",
    "a\tgood\r\nfilm\x0bwith\x0ctabs",
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e",
    "non\u00a0breaking space and next\u0085line",
    "file\x1cseparator\x1fin ascii",
    "unit\x1fsep in non-ascii \u00e9",
    "the NUL \x00 token inside",
    "\x00",
    "don't state-of-the-art 3.14 1,000 \u20ac!",
    "\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a6\u039f\u03a3",  # final sigma when lowercased
    "ideographic\u3000space \u2028line \u2029para \u202fnarrow",
    "a " * 5000,  # a long line
    "the the the film film",
]


def reference_tokens(tokenizer: Tokenizer, texts: list[str]) -> tuple[list[str], list[int]]:
    lists = tokenizer.tokenize_all(texts)
    return [t for tokens in lists for t in tokens], [len(tokens) for tokens in lists]


def test_the_unicode_spaces_are_those_str_split_splits_on() -> None:
    spaces = [chr(c) for c in range(128, sys.maxunicode + 1) if chr(c).isspace()]
    assert sorted(_UNICODE_SPACE_CHARS) == spaces


@pytest.mark.parametrize("tokenizer", TOKENIZERS, ids=lambda t: f"{t.kind}-{t.lowercase}")
@pytest.mark.parametrize(
    "texts",
    [
        HOSTILE,
        [t for t in HOSTILE if SEPARATOR not in t],  # the one-call path for the whole chunk
        [t for t in HOSTILE if t.isascii() and SEPARATOR not in t],
        ["only one text"],
        [""],
        ["", ""],
    ],
    ids=["hostile", "no-separator", "ascii", "one", "empty", "two-empty"],
)
def test_a_chunk_is_tokenised_as_text_by_text(tokenizer: Tokenizer, texts: list[str]) -> None:
    tokens, lengths = tokenize_chunk(tokenizer, texts)
    want_tokens, want_lengths = reference_tokens(tokenizer, texts)
    assert tokens == want_tokens
    assert lengths.tolist() == want_lengths


def test_a_text_holding_the_separator_is_split_on_its_own() -> None:
    stream, lengths = split_chunk(Tokenizer(), ["a b", "x \x00 y"])
    assert lengths is not None and lengths.tolist() == [2, 3]
    assert stream == ["a", "b", "x", "\x00", "y"]
    stream, lengths = split_chunk(Tokenizer(), ["a b", "x y"])
    assert lengths is None and stream == ["a", "b", SEPARATOR, "x", "y"]


def test_the_key_index_finds_every_key_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**40, 5000))
    values = rng.permutation(len(keys)).astype(np.int64)
    index = KeyIndex(keys, values)
    assert (index.get(keys) == values).all()
    others = np.setdiff1d(rng.integers(0, 2**40, 5000), keys)
    assert (index.get(others) == -1).all()
    assert index.get(np.zeros(0, dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("held", [0, 1, 3000])
def test_the_key_index_s_search_and_its_probes_agree(
    held: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(held)
    keys = np.unique(rng.integers(0, 2**40, held))
    index = KeyIndex(keys, rng.permutation(len(keys)).astype(np.int64))
    for asked in (0, 1, 7, KeyIndex.SEARCH_BELOW - 1, KeyIndex.SEARCH_BELOW + 5):
        mixed = np.concatenate([keys, rng.integers(0, 2**40, 50), [0, 2**40 + 1]])
        query = rng.choice(mixed, asked).astype(np.int64)
        monkeypatch.setattr(KeyIndex, "SEARCH_BELOW", 0)  # probing only
        probed = index.get(query)
        monkeypatch.setattr(KeyIndex, "SEARCH_BELOW", 10**9)  # binary search only
        searched = index.get(query)
        assert np.array_equal(probed, searched)
        assert ((searched >= 0) == np.isin(query, keys)).all()


def test_keys_whose_probes_run_past_the_end_of_the_table_wrap_round() -> None:
    rng = np.random.default_rng(1)
    probe = KeyIndex(np.arange(8, dtype=np.int64), np.zeros(8, dtype=np.int64))  # 32 slots
    size = int(probe.mask) + 1
    pool = rng.integers(0, 2**40, 20_000)
    slots = probe._slot(pool)
    keys = np.unique(pool[slots >= size - 2])[:8]  # 8 keys for the last 2 slots: 6 wrap
    assert len(keys) == 8
    values = np.arange(100, 108, dtype=np.int64)
    index = KeyIndex(keys, values)
    assert int(index.mask) + 1 == size
    assert (index.get(keys) == values).all()
    assert set(index.keys[:6].tolist()) <= set(keys.tolist())  # they went round to the front
    assert (index.get(np.setdiff1d(pool[:500], keys)) == -1).all()


def _from_file(state: dict, tmp_path: Path) -> NgramRows:
    """The rows as predict builds them from a run's vocab.safetensors."""
    vocab = {"labels": {"labels": ["a", "b"]}, "features": state}
    vocab_bytes = json.dumps(vocab).encode()
    binary = ngram_file.encode(vocab, vocab_bytes)
    assert binary is not None
    (tmp_path / ngram_file.FILE).write_bytes(binary)
    read = ngram_file.read(tmp_path, vocab_bytes)
    assert read is not None
    stored, layout = read
    assert "features" not in stored["features"] and "idf" not in stored["features"]
    assert stored["labels"] == vocab["labels"]
    return NgramRows(stored["features"], layout)


def _ngram_parity(bag: BagOfNgrams, tokenizer: Tokenizer, texts: list[str], tmp_path: Path) -> None:
    state = bag.to_dict()
    for rows in (NgramRows(state), _from_file(state, tmp_path)):
        assert rows.supported
        for chunk in (texts, texts[: len(texts) // 2], texts[len(texts) // 2 :]):
            want = bag.transform(tokenizer.tokenize_all(chunk))  # sparse CSR (N, F)
            ids, offsets, weights = rows.rows(*split_chunk(tokenizer, chunk))
            assert offsets.tolist() == want.crow_indices().tolist()
            assert ids.tolist() == want.col_indices().tolist()
            assert np.array_equal(weights, want.values().numpy())


SETTINGS = [
    {"ngram_range": (1, 2), "weighting": "tfidf", "sublinear_tf": True},
    {"ngram_range": (1, 1), "weighting": "count"},
    {"ngram_range": (1, 3), "weighting": "binary", "norm": "l2"},
    {"ngram_range": (2, 3), "weighting": "tfidf"},
    {"ngram_range": (1, 2), "weighting": "count", "min_count": 2},
    {"ngram_range": (1, 2), "weighting": "nbsvm"},
    {"ngram_range": (1, 3), "weighting": "nbsvm", "norm": None, "alpha": 0.5},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_ngram_rows_equal_the_bag_of_ngrams_on_hostile_texts(
    settings: dict, tmp_path: Path
) -> None:
    tokenizer = Tokenizer("whitespace")
    train = HOSTILE + ["a good film with tabs", "the film the film", "\x00 a good"]
    labels = np.arange(len(train)) % 3  # nbsvm's ratios are fitted on labels
    bag = BagOfNgrams(**settings).fit(tokenizer.tokenize_all(train), labels)
    _ngram_parity(bag, tokenizer, HOSTILE + ["unseen words only", "a good a good film"], tmp_path)


def _id_parity(
    featurizer: IdsFeaturizer, tokenizer: Tokenizer, texts: list[str], max_n: int
) -> None:
    rows = IdRows(featurizer.to_dict(), max_n=max_n)
    assert rows.supported
    for chunk in (texts, texts[:7], texts[7:], texts):  # again: tokens remembered from before
        want = featurizer.bags(tokenizer.tokenize_all(chunk))
        ids, offsets = rows.rows(*split_chunk(tokenizer, chunk))
        assert ids.tolist() == want.ids.tolist()
        assert offsets[:-1].tolist() == want.offsets.tolist()
        assert offsets[-1] == len(want.ids)


@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_id_rows_equal_the_ids_featurizer_on_hostile_texts(max_n: int) -> None:
    tokenizer = Tokenizer("whitespace")
    cfg = FeaturesConfig(kind="ids", ngram_range=[1, max_n], buckets=1000)
    featurizer = IdsFeaturizer(cfg)
    train = HOSTILE + ["a good film", "\x00 word"]
    featurizer.fit(tokenizer.tokenize_all(train), train)
    _id_parity(featurizer, tokenizer, HOSTILE + ["unseen words only"], max_n)


def test_id_rows_of_a_pruned_run_equal_the_featurizer() -> None:
    tokenizer = Tokenizer("whitespace")
    cfg = FeaturesConfig(kind="ids", ngram_range=[1, 2], buckets=50)
    featurizer = IdsFeaturizer(cfg)
    featurizer.fit(tokenizer.tokenize_all(HOSTILE), HOSTILE)
    featurizer.bucket_rows = [1, 4, 9, 10, 33, 49]
    _id_parity(featurizer, tokenizer, HOSTILE, 2)


def test_encode_bags_and_id_rows_agree_on_a_dict_vocabulary() -> None:
    vocab = Vocab(["good", "film", "a"], specials=())
    texts = ["a good film", "", "film film x"]
    want = encode_bags([t.split() for t in texts], vocab, ngrams=2, buckets=7)
    rows = IdRows({"vocab": vocab.to_dict(), "max_n": 2, "buckets": 7, "minn": 3, "maxn": 0})
    ids, offsets = rows.rows(*split_chunk(Tokenizer(), texts))
    assert ids.tolist() == want.ids.tolist()
    assert offsets[:-1].tolist() == want.offsets.tolist()


def test_character_ngrams_are_left_to_the_reference() -> None:
    state = {"vocab": Vocab(["a"], specials=()).to_dict(), "buckets": 10, "maxn": 5, "minn": 3}
    assert not IdRows(state, max_n=1).supported


# -- real data --------------------------------------------------------------------------------


def _texts(relative: str, encoding: str = "utf-8") -> list[str]:
    path = shared_data(relative)
    return [line.split(" ", 1)[1] for _, line in read_lines(path, encoding) if " " in line]


@pytest.mark.parametrize(
    ("relative", "encoding"),
    [("sst2/stsa.binary.test", "utf-8"), ("mr/rt-polarity.all", "latin-1")],
)
@pytest.mark.parametrize("tokenizer", TOKENIZERS, ids=lambda t: f"{t.kind}-{t.lowercase}")
def test_tokens_of_real_data_are_the_reference_ones(
    relative: str, encoding: str, tokenizer: Tokenizer
) -> None:
    texts = _texts(relative, encoding)
    for start in range(0, len(texts), 2048):
        chunk = texts[start : start + 2048]
        tokens, lengths = tokenize_chunk(tokenizer, chunk)
        want_tokens, want_lengths = reference_tokens(tokenizer, chunk)
        assert tokens == want_tokens
        assert lengths.tolist() == want_lengths


@pytest.mark.parametrize(
    ("train", "test", "encoding"),
    [
        ("sst2/stsa.binary.train", "sst2/stsa.binary.test", "utf-8"),
        ("mr/rt-polarity.all", "mr/rt-polarity.all", "latin-1"),
    ],
)
def test_features_of_real_data_are_the_reference_ones(
    train: str, test: str, encoding: str, tmp_path: Path
) -> None:
    tokenizer = Tokenizer("whitespace")
    train_texts = _texts(train, encoding)
    test_texts = _texts(test, encoding)[:3000]
    bag = BagOfNgrams((1, 2), "tfidf", sublinear_tf=True).fit(tokenizer.tokenize_all(train_texts))
    _ngram_parity(bag, tokenizer, test_texts, tmp_path)
    featurizer = IdsFeaturizer(FeaturesConfig(kind="ids", ngram_range=[1, 2], buckets=200_000))
    featurizer.fit(tokenizer.tokenize_all(train_texts), train_texts)
    _id_parity(featurizer, tokenizer, test_texts, 2)


def test_no_torch_in_the_chunk_featurisers() -> None:
    import subprocess

    code = "import sys, ffnlp.features.fast, ffnlp.tasks.fastpredict; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_id_rows_forget_remembered_tokens_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IdRows, "_MAX_SEEN", 4)  # forgotten at almost every chunk
    tokenizer = Tokenizer("whitespace")
    featurizer = IdsFeaturizer(FeaturesConfig(kind="ids", ngram_range=[1, 2], buckets=100))
    featurizer.fit(tokenizer.tokenize_all(HOSTILE), HOSTILE)
    _id_parity(featurizer, tokenizer, HOSTILE + ["more unseen words here"], 2)
