"""Tokenizers, vocabularies, label sets and fastText-style hashed word n-grams."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ffnlp.errors import ConfigError, DataError, ModelFileError
from ffnlp.text.ngrams import ngram_hashes, ngram_hashes_flat, token_hash
from ffnlp.text.tokenize import Tokenizer
from ffnlp.text.vocab import LabelVocab, Vocab
from tests.extras import needs

# ---------------------------------------------------------------------------------------------
# tokenizers


def test_whitespace_tokenizer_splits_on_ascii_whitespace_only():
    tok = Tokenizer()
    assert tok("  a\tb\r\nc  d ") == ["a", "b", "c", "d"]
    # U+0085 (MR's Latin-1 byte 0x85) and U+00A0 are not separators, as in fastText
    assert tok("hmmm\x85might  non\xa0breaking") == ["hmmm\x85might", "non\xa0breaking"]
    assert tok("") == [] and tok("   ") == []


def test_lowercase_option():
    assert Tokenizer(lowercase=True)("The CAT") == ["the", "cat"]
    assert Tokenizer()("The CAT") == ["The", "CAT"]


def test_regex_tokenizer_words_numbers_punctuation():
    tok = Tokenizer("regex", lowercase=True)
    text = (
        "Don't stop: state-of-the-art costs $1,000.50 (or 3.14%) in the 1930s — O’Brien's cafés!!"
    )
    assert tok(text) == [
        "don't", "stop", ":", "state-of-the-art", "costs", "$", "1,000.50", "(", "or", "3.14",
        "%", ")", "in", "the", "1930s", "—", "o’brien's", "cafés", "!", "!",
    ]  # fmt: skip
    assert tok("'quoted' -dash- end.") == ["'", "quoted", "'", "-", "dash", "-", "end", "."]
    assert tok("naïve\x85cliché") == ["naïve", "cliché"]  # Unicode whitespace separates


def test_tokenizer_is_a_frozen_config_and_checks_its_kind():
    tok = Tokenizer("regex")
    with pytest.raises(AttributeError):
        tok.kind = "whitespace"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="must be one of whitespace, regex; got 'spacy'"):
        Tokenizer("spacy")
    assert Tokenizer().tokenize_all(["a b", "", "c"]) == [["a", "b"], [], ["c"]]


# ---------------------------------------------------------------------------------------------
# Vocab

CORPUS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"], ["the"]]


def test_vocab_order_specials_then_count_then_alphabetical():
    v = Vocab.build(CORPUS)
    assert v.itos == ["<pad>", "<unk>", "the", "cat", "sat", "a", "dog"]
    assert v.counts == [0, 0, 3, 2, 2, 1, 1]
    assert (v.pad_id, v.unk_id) == (0, 1)
    assert v["cat"] == v.stoi("cat") == 3 and "cat" in v and "cow" not in v
    # the order does not depend on the order of the sentences
    assert Vocab.build(reversed(CORPUS)).itos == v.itos


def test_vocab_min_count_and_max_size_includes_specials():
    assert Vocab.build(CORPUS, min_count=2).itos == ["<pad>", "<unk>", "the", "cat", "sat"]
    v = Vocab.build(CORPUS, max_size=4)
    assert len(v) == 4 and v.itos == ["<pad>", "<unk>", "the", "cat"]
    with pytest.raises(DataError, match="max_size must be at least the number of specials"):
        Vocab.build(CORPUS, max_size=1)
    with pytest.raises(DataError, match="min_count must be at least 1"):
        Vocab.build(CORPUS, min_count=0)


def test_encode_decode_and_unknown_tokens():
    v = Vocab.build(CORPUS)
    assert v.encode(["the", "cow", "sat"]) == [2, 1, 4]
    assert v.decode([2, 1, 4]) == ["the", "<unk>", "sat"]
    assert v.stoi("cow") == v.unk_id
    with pytest.raises(DataError, match=r"id 7 is outside the vocabulary \(0\.\.6\)"):
        v.decode([7])


def test_vocab_without_unk_raises_on_unknown_tokens():
    v = Vocab.build(CORPUS, specials=("<pad>",))
    assert v.unk_id is None and v.pad_id == 0
    with pytest.raises(
        DataError, match="the token 'cow' is not in the vocabulary, which has no <unk>"
    ):
        v["cow"]
    with pytest.raises(
        DataError, match="tokens not in the vocabulary, which has no <unk>: 'cow', 'pig'"
    ):
        v.encode(["pig", "the", "cow"])
    assert Vocab.build(CORPUS, specials=()).pad_id is None


def test_empty_vocabulary_is_only_the_specials():
    v = Vocab.build([])
    assert v.itos == ["<pad>", "<unk>"] and len(v) == 2
    assert v.encode(["anything", "at", "all"]) == [1, 1, 1]  # all unknown
    assert Vocab.build([[], []], specials=()).itos == []
    assert len(Vocab.build(CORPUS, min_count=100)) == 2


def test_a_special_that_occurs_in_the_data_keeps_its_count_and_one_id():
    # PTB spells unknown words "<unk>" in the text itself
    v = Vocab.build([["a", "<unk>", "<unk>", "b", "a"]])
    assert v.itos == ["<pad>", "<unk>", "a", "b"] and v.counts == [0, 2, 2, 1]


def test_vocab_save_load_round_trip(tmp_path):
    v = Vocab.build(CORPUS + [["café", "naïve"]])
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocab.load(path)
    assert (w.itos, w.counts, w.specials) == (v.itos, v.counts, v.specials)
    assert w.unk_id == v.unk_id and w.encode(["café", "x"]) == v.encode(["café", "x"])
    assert json.loads(path.read_text(encoding="utf-8"))["itos"][-1] in {"café", "naïve"}


def test_vocab_load_of_a_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match="bad.json: not a JSON vocabulary file"):
        Vocab.load(bad)
    bad.write_text('{"counts": []}')
    with pytest.raises(ModelFileError, match="bad.json: not a vocabulary"):
        Vocab.load(bad)
    with pytest.raises(ModelFileError, match="no such vocabulary file"):
        Vocab.load(tmp_path / "missing.json")
    with pytest.raises(DataError, match="cannot hold a token twice; repeated: 'a'"):
        Vocab(["a", "b", "a"], specials=())


# ---------------------------------------------------------------------------------------------
# LabelVocab


def test_label_order_numeric_when_all_integers():
    assert LabelVocab.build(["10", "1", "0", "2", "1"]).labels == ["0", "1", "2", "10"]
    assert LabelVocab.build(["-1", "1", "0"]).labels == ["-1", "0", "1"]
    assert LabelVocab.build(["pos", "neg", "10", "9"]).labels == ["10", "9", "neg", "pos"]
    assert LabelVocab.build(["b", "a"]).labels == LabelVocab.build(["a", "b"]).labels == ["a", "b"]


def test_iterating_a_vocabulary_gives_its_entries_in_id_order():
    # list() of a vocabulary once fell back to __getitem__(0), which looked 0 up as a label
    # ("unknown label 0") instead of iterating
    assert list(LabelVocab.build(["1", "0", "1"])) == ["0", "1"]
    assert [label for label in LabelVocab.build(["pos", "neg"])] == ["neg", "pos"]
    vocab = Vocab.build([["b", "a", "b"]], specials=["<unk>"])
    assert list(vocab) == vocab.itos and list(vocab)[0] == "<unk>" and "b" in list(vocab)


def test_label_encode_decode_and_unseen_labels():
    labels = LabelVocab.build(["pos", "neg", "pos"])
    assert labels.encode(["neg", "pos"]) == [0, 1] and labels["pos"] == 1 and len(labels) == 2
    assert labels.encode(iter(["pos"])) == [1]  # any iterable, read once
    assert labels.decode([1, 0]) == ["pos", "neg"]
    with pytest.raises(DataError) as info:
        labels.encode(iter(["pos", "neutral", "mixed", "neutral"]))
    assert str(info.value) == (
        "unknown labels 'mixed', 'neutral': the model knows only 'neg', 'pos'; "
        "check the label column or train on data with these labels"
    )
    with pytest.raises(DataError, match=r"class id 2 is outside the label set \(0\.\.1\)"):
        labels.decode([2])


def test_label_vocab_round_trip():
    labels = LabelVocab.build(["1", "0"])
    assert LabelVocab.from_dict(json.loads(json.dumps(labels.to_dict()))).labels == ["0", "1"]
    with pytest.raises(ModelFileError):
        LabelVocab.from_dict({"classes": []})


# ---------------------------------------------------------------------------------------------
# hashed n-grams


def _reference_hash(token: str) -> int:
    """fastText's Dictionary::hash, written out independently with explicit two's complement."""
    h = 2166136261
    for byte in token.encode("utf-8"):
        signed = byte - 256 if byte > 127 else byte  # int8_t(c)
        h ^= signed % 2**32  # uint32_t(int8_t(c))
        h = (h * 16777619) % 2**32
    return h


def _reference_ngrams(tokens: list[str], max_n: int, buckets: int) -> list[int]:
    def as_int64_then_uint64(h32: int) -> int:
        signed = h32 - 2**32 if h32 >= 2**31 else h32  # stored as int32_t
        return signed % 2**64  # widened to uint64_t

    out = []
    for n in range(2, max_n + 1):
        for i in range(len(tokens) - n + 1):
            h = as_int64_then_uint64(_reference_hash(tokens[i]))
            for token in tokens[i + 1 : i + n]:
                h = (h * 116049371 + as_int64_then_uint64(_reference_hash(token))) % 2**64
            out.append(h % buckets)
    return out


SENTENCE = ["the", "café", "was", "naïve", "€", "and", "fun", "!"]


def test_token_hash_is_fnv1a_32():
    assert token_hash("") == 0x811C9DC5  # the FNV offset basis
    assert token_hash("hello") == 0x4F9F2CAB  # FNV-1a 32 of an ASCII string
    for token in SENTENCE:
        assert token_hash(token) == _reference_hash(token)


def test_ngram_hashes_match_an_independent_computation_and_stay_in_range():
    for max_n, buckets in [(2, 2_000_000), (3, 1000), (4, 7)]:
        got = ngram_hashes(SENTENCE, max_n, buckets)
        assert got == _reference_ngrams(SENTENCE, max_n, buckets)
        assert all(0 <= b < buckets for b in got)
    assert ngram_hashes(SENTENCE, 2, 2**31 - 1)[:2] == [1049759765, 1561868731]  # pinned
    assert ngram_hashes(["one"], 3, 100) == [] and ngram_hashes(SENTENCE, 1, 100) == []
    assert len(ngram_hashes(["a", "b"], 5, 100)) == 1


def test_ngram_hashes_are_the_same_in_another_process_with_another_hash_seed():
    code = (
        f"from ffnlp.text.ngrams import ngram_hashes;print(ngram_hashes({SENTENCE!r}, 3, 2000003))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == ngram_hashes(SENTENCE, 3, 2000003)


def test_ngram_hashes_flat_equals_per_sentence():
    sentences = [SENTENCE, [], ["solo"], ["a", "b"], SENTENCE[::-1], ["x", "y", "z"]]
    ids, offsets = ngram_hashes_flat(sentences, 3, 1009)
    assert offsets.tolist()[0] == 0 and len(offsets) == len(sentences) + 1
    assert ids.dtype == np.int64
    for i, tokens in enumerate(sentences):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == ngram_hashes(tokens, 3, 1009)
    empty_ids, empty_offsets = ngram_hashes_flat([[], ["a"]], 2, 10)
    assert empty_ids.tolist() == [] and empty_offsets.tolist() == [0, 0, 0]


def test_ngram_arguments_are_checked():
    with pytest.raises(ConfigError, match="max_n must be at least 1.*buckets must be at least 1"):
        ngram_hashes(SENTENCE, 0, 0)


def test_ngram_buckets_equal_fasttexts(tmp_path):
    """A supervised fastText model's sentence vector averages the rows of the words and of the
    word n-gram buckets of the line (plus its end-of-sentence token </s>): rebuild it from ours."""
    fasttext = needs("fasttext")
    train = tmp_path / "train.txt"
    train.write_text("__label__a café naïve über\n__label__b hello world !\n", encoding="utf-8")
    buckets = 1000
    model = fasttext.train_supervised(
        input=str(train), wordNgrams=3, bucket=buckets, dim=4, epoch=1, minn=0, maxn=0, verbose=0
    )
    matrix = model.get_input_matrix()
    n_words = len(model.words)
    for sentence in ["café naïve über", "hello unseen world €uro !"]:
        tokens = sentence.split() + ["</s>"]
        rows = [model.get_word_id(t) for t in tokens if model.get_word_id(t) >= 0]
        rows += [n_words + b for b in ngram_hashes(tokens, 3, buckets)]
        expected = matrix[rows].mean(axis=0)
        np.testing.assert_allclose(model.get_sentence_vector(sentence), expected, atol=1e-6)
