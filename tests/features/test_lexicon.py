"""Hand-built lexicon features (Jurafsky & Martin ch. 5) and their registry."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from ffnlp.errors import ConfigError, DataError, NotFittedError
from ffnlp.features.lexicon import (
    DEFAULT_FEATURES,
    FEATURES,
    Lexicon,
    LexiconConfig,
    LexiconFeaturizer,
    read_word_list,
    register_feature,
)
from ffnlp.models.feature_mlp import FeatureMLP
from tests.conftest import shared_data

# the review of Jurafsky & Martin's figure 5.2
REVIEW = (
    "It's hokey. There are virtually no surprises, and the writing is second-rate. So why was it "
    "so enjoyable? For one thing, the cast is great. Another nice touch is the music. I was "
    "overcome with the urge to get off the couch and start dancing. It sucked me in, and it'll do "
    "the same to you."
)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w'-]+|[^\w\s]", text.lower())


@pytest.fixture()
def lexicon_dir(tmp_path: Path) -> Path:
    # CRLF line ends, a comment header and one Latin-1 byte, as in the Hu & Liu files
    (tmp_path / "positive-words.txt").write_bytes(
        b";  positive words\r\n\r\ngreat\r\nnice\r\nenjoyable\r\n"
    )
    (tmp_path / "negative-words.txt").write_bytes(
        b"; negative\r\nhokey\r\nsecond-rate\r\nna\xefve\r\n"
    )
    return tmp_path


def test_word_lists_accept_crlf_comments_and_latin1(lexicon_dir: Path) -> None:
    lex = Lexicon.load(lexicon_dir)
    assert lex.positive == {"great", "nice", "enjoyable"}
    assert lex.negative == {"hokey", "second-rate", "naïve"}


def test_the_textbook_features(lexicon_dir: Path) -> None:
    feats = LexiconFeaturizer(Lexicon.load(lexicon_dir), standardize=False)
    tokens = _tokens(REVIEW)
    x = feats.transform([tokens])[0].tolist()
    assert x[:5] == [
        3.0,
        2.0,
        1.0,
        3.0,
        0.0,
    ]  # as in J&M: 3 positive, 2 negative, "no", 3 pronouns, no "!"
    assert x[5] == pytest.approx(math.log(len(tokens)))
    assert feats.transform([["wow", "!"]])[0, 4] == 1.0
    assert feats.transform([[]])[0].tolist() == [0.0] * 6  # an empty text is all zeros


def test_real_hu_liu_lexicon_reads_completely() -> None:
    lex = Lexicon.load(shared_data("opinion_lexicon/positive-words.txt").parent)
    assert (len(lex.positive), len(lex.negative)) == (2006, 4783)
    assert "naïve" in lex.negative and not any(w.endswith("\r") for w in lex.negative)


def test_standardisation_uses_the_training_split_only(lexicon_dir: Path) -> None:
    feats = LexiconFeaturizer(Lexicon.load(lexicon_dir), names=["positive_count"])
    train = [["great"], ["great", "nice"], ["dull"], ["nice", "nice", "great"]]
    xs = feats.fit_transform(train)
    assert xs.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert xs.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert feats.mean_ is not None and feats.mean_.item() == pytest.approx(1.5)
    # another split is scaled with the training statistics, not its own
    other = feats.transform([["great"] * 5])
    assert other.item() == pytest.approx((5 - 1.5) / feats.std_.item())  # type: ignore[union-attr]
    restored = LexiconFeaturizer(feats.lexicon, names=["positive_count"]).load_state(feats.state())
    torch.testing.assert_close(restored.transform(train), xs)


def test_constant_feature_is_left_unscaled(lexicon_dir: Path) -> None:
    feats = LexiconFeaturizer(Lexicon.load(lexicon_dir), names=["has_exclamation"])
    assert feats.fit_transform([["a"], ["b"]]).tolist() == [[0.0], [0.0]]


def test_registry_takes_user_features(lexicon_dir: Path) -> None:
    @register_feature("test_has_but")
    def has_but(tokens, lexicon):  # type: ignore[no-untyped-def]
        return float("but" in tokens)

    try:
        feats = LexiconFeaturizer(
            Lexicon.load(lexicon_dir), names=["test_has_but", "has_no"], standardize=False
        )
        assert feats.transform([["good", "but", "no"]]).tolist() == [[1.0, 1.0]]
        with pytest.raises(ConfigError, match="already registered; pass replace=True"):
            register_feature("test_has_but")(has_but)
    finally:
        FEATURES.pop("test_has_but")


def test_errors_are_clear(lexicon_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown feature\(s\) 'postive_count'"):
        LexiconFeaturizer(Lexicon.load(lexicon_dir), names=["postive_count"])
    with pytest.raises(NotFittedError, match="fit it on the training split first"):
        LexiconFeaturizer(Lexicon.load(lexicon_dir)).transform([["a"]])
    with pytest.raises(DataError, match="does not exist"):
        read_word_list(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("; only a comment\n")
    with pytest.raises(DataError, match="holds no words"):
        read_word_list(tmp_path / "empty.txt")
    with pytest.raises(ConfigError, match="needs a lexicon"):
        Lexicon.load()
    assert LexiconConfig().names == list(DEFAULT_FEATURES)


def test_sst2_learns_a_positive_weight_for_positive_words() -> None:
    train = shared_data("sst2/stsa.binary.train")
    lines = train.read_text(encoding="utf-8").splitlines()
    labels = torch.tensor([int(line[0]) for line in lines])
    tokens = [line[2:].split() for line in lines]
    feats = LexiconFeaturizer(
        Lexicon.load(shared_data("opinion_lexicon/positive-words.txt").parent)
    )
    x = feats.fit_transform(tokens)  # (B, 6)
    model = FeatureMLP(6, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(100):  # full-batch gradient descent: logistic regression on six features
        opt.zero_grad()
        model.loss({"x": x, "y": labels}).backward()
        opt.step()
    w = model.input_weights()[0]  # (F,): one logit, positive = class "1"
    pos, neg = DEFAULT_FEATURES.index("positive_count"), DEFAULT_FEATURES.index("negative_count")
    assert w[pos] > 0.3
    assert w[neg] < -0.3
    accuracy = (model.head.predict(model(x)) == labels).float().mean().item()
    assert accuracy > 0.65
