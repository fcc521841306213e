"""Character n-gram subwords: fastText's n-grams and hashing, checked against gensim and fastText."""

from __future__ import annotations

import pytest
import torch

from ffnlp.errors import ConfigError
from ffnlp.features.subwords import (
    SubwordTable,
    char_ngrams,
    check_subword_settings,
    fnv1a_32,
    subword_buckets,
)
from ffnlp.models.kernels.sgns_cpu import subword_bags
from tests.extras import needs

WORDS = ["where", "a", "naïve", "café", "日本語", "déjà-vu", "x" * 12, "<unk>", "don't"]


def test_ngrams_of_where_follow_the_fasttext_paper():
    grams = char_ngrams("where", 3, 3)
    assert grams == ["<wh", "whe", "her", "ere", "re>"]


def test_lone_boundary_symbols_are_not_ngrams():
    grams = char_ngrams("ab", 1, 2)
    assert "<" not in grams and ">" not in grams
    assert grams == ["<a", "a", "ab", "b", "b>"]


def test_ngrams_never_split_a_character():
    for g in char_ngrams("日本語", 1, 3):
        g.encode("utf-8").decode("utf-8")  # would raise on a split character
    assert "日本" in char_ngrams("日本語", 2, 2)


def test_no_subwords_when_maxn_is_zero():
    assert char_ngrams("where", 3, 0) == []
    assert subword_buckets("where", 3, 0, 100) == ()


def test_fnv1a_sign_extends_high_bytes():
    # textbook FNV-1a of b"\xc3" differs from fastText's signed-char variant
    textbook = ((2166136261 ^ 0xC3) * 16777619) & 0xFFFFFFFF
    assert fnv1a_32(b"a") == ((2166136261 ^ 0x61) * 16777619) & 0xFFFFFFFF
    assert fnv1a_32(b"\xc3") != textbook


@pytest.mark.parametrize("word", WORDS)
def test_buckets_match_gensim(word):
    fasttext_module = needs("gensim.models.fasttext")
    expected = fasttext_module.ft_ngram_hashes(word, 3, 6, 2_000_000)
    assert list(subword_buckets(word, 3, 6, 2_000_000)) == list(expected)


def test_buckets_match_fasttext(tmp_path):
    fasttext = needs("fasttext")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(WORDS * 20) + "\n", encoding="utf-8")
    model = fasttext.train_unsupervised(
        str(corpus),
        model="skipgram",
        minn=2,
        maxn=5,
        bucket=5000,
        dim=4,
        epoch=1,
        minCount=1,
        thread=1,
        verbose=0,
    )
    nwords = len(model.words)
    for word in WORDS + ["misspeled", "unseen"]:
        _, ids = model.get_subwords(word)
        buckets = [int(i) - nwords for i in ids if i >= nwords]
        assert buckets == list(subword_buckets(word, 2, 5, 5000)), word


def test_table_rows_start_with_the_word_then_its_buckets():
    table = SubwordTable(["where", "here"], 3, 4, 50)
    assert table.num_rows == 52
    rows = table.word_rows(1).tolist()
    assert rows[0] == 1
    assert rows[1:] == [2 + b for b in subword_buckets("here", 3, 4, 50)]
    assert table.oov_rows("wher") == [2 + b for b in subword_buckets("wher", 3, 4, 50)]


def test_table_bags_match_word_rows():
    words = ["where", "a", "naïve", "here", "café"]
    table = SubwordTable(words, 2, 4, 97)
    idx = torch.tensor([3, 0, 3, 1])
    rows, starts, _ = subword_bags(idx, table.rows, table.offsets)
    bounds = starts.tolist()
    for k, i in enumerate(idx.tolist()):
        assert rows[bounds[k] : bounds[k + 1]].tolist() == table.word_rows(i).tolist()


def test_table_without_subwords_is_the_word_table():
    table = SubwordTable(["a", "b"], 3, 0, 1000)
    assert table.num_rows == 2
    assert table.rows.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("minn", "maxn", "buckets", "needle"),
    [
        (0, 6, 10, "minn must be at least 1"),
        (4, 3, 10, "maxn (3) is smaller"),
        (3, 6, 0, "buckets"),
    ],
)
def test_bad_settings_are_named(minn, maxn, buckets, needle):
    assert any(needle in p for p in check_subword_settings(minn, maxn, buckets))
    with pytest.raises(ConfigError, match="maxn|minn|buckets"):
        SubwordTable(["a"], minn, maxn, buckets)
