"""BagOfNgrams.transform looks up the character n-grams of all its texts at once, as integer
keys in arrays; these tests hold it to the n-grams one text at a time, as strings (the keys
``fit`` counted), on texts made to catch it out: characters no feature holds, characters past
the basic plane and lone surrogates, empty texts, clauses after a contrast word, both kinds of
table, and an alphabet too large for integer keys."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

import ffnlp.features.bag as bag_module
from ffnlp.features.bag import BagOfNgrams

WORDS = ["but", "BUT,", "good", "bad", "film", "été", "😀x", "a\ud800b", "n't", "x\x00y", "yet"]


def _texts(rng: random.Random, count: int) -> list[list[str]]:
    return [[rng.choice(WORDS) for _ in range(rng.randint(0, 12))] for _ in range(count)]


def _one_by_one(bag: BagOfNgrams, token_lists: list[list[str]]) -> np.ndarray:
    """(N, F) counts: each text's n-gram keys looked up as strings."""
    vocabulary = bag.vocabulary_
    assert vocabulary is not None
    counts = np.zeros((len(token_lists), len(vocabulary)))
    for row, tokens in enumerate(token_lists):
        for key in bag._ngrams(tokens):
            column = vocabulary.get(key)
            if column is not None:
                counts[row, column] += 1
    return counts


@pytest.mark.parametrize("direct", [True, False], ids=["direct-tables", "sorted-keys"])
@pytest.mark.parametrize("contrast", [(), ("but",)], ids=["text", "text+clause"])
@pytest.mark.parametrize("chars", [(2, 5), (1, 3), (3, 3)])
def test_the_windows_are_the_keys_fit_counted(
    chars: tuple[int, int],
    contrast: tuple[str, ...],
    direct: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not direct:
        monkeypatch.setattr(bag_module, "_DIRECT_KEYS", 1)
    rng = random.Random(hash((chars, contrast)) % 1000)
    train, new = _texts(rng, 300), _texts(rng, 200) + [["zzz", "ωμέγα"], [], ["but"]]
    targets = np.array([rng.randint(0, 1) for _ in train])
    bag = BagOfNgrams(
        char_range=chars, contrast_words=contrast, weighting="count", norm=None, min_count=2
    ).fit(train, targets)
    # the index made now (not after _INDEX_AFTER texts): the array path is the one tested
    assert bag._char_index(bag.vocabulary_, bag_module._INDEX_AFTER) is not None
    for token_lists in (train, new):
        got = bag.transform(token_lists).to_dense().numpy()
        assert np.array_equal(got, _one_by_one(bag, token_lists))
    # the weighted rows go through the same cells
    nbsvm = BagOfNgrams(char_range=chars, contrast_words=contrast, weighting="nbsvm")
    nbsvm.fit(train, targets)
    assert nbsvm._char_index(nbsvm.vocabulary_, bag_module._INDEX_AFTER) is not None
    got = nbsvm.transform(new).to_dense().numpy()
    nbsvm._chars_cache = (nbsvm.vocabulary_, len(nbsvm.vocabulary_), None)  # strings instead
    assert np.allclose(got, nbsvm.transform(new).to_dense().numpy(), rtol=0, atol=1e-7)


def test_an_alphabet_too_large_for_integer_keys_is_looked_up_as_strings() -> None:
    # 6,000 characters: 6000 ** 5 is past 2 ** 62
    letters = [chr(0x4E00 + i) for i in range(6000)]
    train = [["".join(letters[i : i + 6])] for i in range(0, 6000, 3)]
    bag = BagOfNgrams(char_range=(2, 5), weighting="count", norm=None).fit(train)
    assert bag._char_index(bag.vocabulary_, bag_module._INDEX_AFTER) is None
    new = [["".join(letters[i + 1 : i + 8]), "a"] for i in range(0, 6000, 301)]
    assert np.array_equal(bag.transform(new).to_dense().numpy(), _one_by_one(bag, new))


def test_the_index_is_made_after_enough_texts_and_follows_a_new_vocabulary() -> None:
    bag = BagOfNgrams(char_range=(2, 3), weighting="count", norm=None).fit([["abc"], ["abd"]])
    few = [["abc", "abd"]] * (bag_module._INDEX_AFTER // 2)
    for _ in range(2):  # the first call looks the strings up; the second makes the index
        assert bag._chars_cache is None
        assert np.array_equal(bag.transform(few).to_dense().numpy(), _one_by_one(bag, few))
    first = bag._char_index(bag.vocabulary_, 1)
    assert first is not None and bag._char_index(bag.vocabulary_, 1) is first  # made once
    bag.fit([["xyz"], ["xyw"]])
    many = [["xyz"]] * bag_module._INDEX_AFTER
    assert np.array_equal(bag.transform(many).to_dense().numpy(), _one_by_one(bag, many))
    assert bag._char_index(bag.vocabulary_, 1) not in (None, first)


def test_a_pickled_bag_leaves_its_index_behind_and_makes_it_again() -> None:
    rng = random.Random(5)
    texts = _texts(rng, 600)
    bag = BagOfNgrams(char_range=(2, 5), contrast_words=("but",), weighting="count", norm=None)
    bag.fit(texts, np.zeros(len(texts)))
    before = bag.transform(texts).to_dense().numpy()  # 600 texts: the index is made
    assert bag._chars_cache is not None
    again = pickle.loads(pickle.dumps(bag))
    assert again._chars_cache is None and again._char_texts == 0
    assert np.array_equal(again.transform(texts).to_dense().numpy(), before)
    assert again._chars_cache is not None
    # a bag pickled before the index existed (no such attributes) still transforms
    state = {k: v for k, v in bag.__dict__.items() if k not in ("_chars_cache", "_char_texts")}
    old = BagOfNgrams.__new__(BagOfNgrams)
    old.__setstate__(state)
    assert np.array_equal(old.transform(texts).to_dense().numpy(), before)
